"""Facts derived from a finished object's mask (RLE, area, box, polygons, files written), computed
once per mask array.

Finished objects' masks are never modified in place (see :class:`AnnotationObject`): every edit makes a
new array. A fact computed for an array therefore holds while that array lives, and saving a document
re-encodes only the objects that changed since the last save instead of every object of the image.
Entries are keyed by the array's identity and dropped when the array is freed.
"""
from __future__ import annotations

import threading
import weakref
from typing import Any, Callable, Dict, Tuple

import numpy as np

_MEMO: Dict[int, Tuple['weakref.ref', Dict[str, Any]]] = {}
_LOCK = threading.Lock()


def _facts(mask: np.ndarray) -> Dict[str, Any]:
    key = id(mask)
    with _LOCK:
        entry = _MEMO.get(key)
        if entry is not None and entry[0]() is mask:
            return entry[1]

        def forget(ref, key=key):
            with _LOCK:
                if _MEMO.get(key, (None,))[0] is ref:
                    del _MEMO[key]
        facts: Dict[str, Any] = {}
        _MEMO[key] = (weakref.ref(mask, forget), facts)
        return facts


def fact(mask: np.ndarray, name: str, compute: Callable[[np.ndarray], Any]) -> Any:
    """``compute(mask)``, remembered for this mask array under ``name``."""
    facts = _facts(mask)
    if name not in facts:
        facts[name] = compute(mask)
    return facts[name]


def get(mask: np.ndarray, name: str, default: Any = None) -> Any:
    """A fact stored with :func:`put` (or computed by :func:`fact`), else ``default``."""
    return _facts(mask).get(name, default)


def put(mask: np.ndarray, name: str, value: Any) -> None:
    """Remember ``value`` for this mask array under ``name``."""
    _facts(mask)[name] = value
