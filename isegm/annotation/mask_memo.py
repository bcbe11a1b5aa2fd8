"""Facts derived from a finished object's mask (RLE, area, polygons, files written), computed once per
mask object (a :class:`~isegm.annotation.box_mask.BoxMask`, or any weak-referenceable array).

Finished objects' masks are never modified in place (see :class:`AnnotationObject`): every edit makes a
new one. A fact computed for a mask therefore holds while that mask lives, and saving a document
re-encodes only the objects that changed since the last save instead of every object of the image.
Entries are keyed by the mask's identity and dropped when it is freed.
"""
from __future__ import annotations

import threading
import weakref
from typing import Any, Callable, Dict, Tuple

_MEMO: Dict[int, Tuple['weakref.ref', Dict[str, Any]]] = {}
_LOCK = threading.Lock()


def _facts(mask: Any) -> Dict[str, Any]:
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


def fact(mask: Any, name: str, compute: Callable[[Any], Any]) -> Any:
    """``compute(mask)``, remembered for this mask array under ``name``."""
    facts = _facts(mask)
    if name not in facts:
        facts[name] = compute(mask)
    return facts[name]


def get(mask: Any, name: str, default: Any = None) -> Any:
    """A fact stored with :func:`put` (or computed by :func:`fact`), else ``default``."""
    return _facts(mask).get(name, default)


def put(mask: Any, name: str, value: Any) -> None:
    """Remember ``value`` for this mask array under ``name``."""
    _facts(mask)[name] = value
