"""RITM-compatible constructor configs: ``{'class': dotted path, 'params': {name: {type, value, specified}}}``.

``@serialize`` on a model class records the constructor call as ``model._config`` in exactly the format
that RITM checkpoints carry, so checkpoints we write are readable by the reference code and vice versa.
Only plain Python values are stored, so ``torch.load(..., weights_only=True)`` reads them back.
"""
from __future__ import annotations

import functools
import inspect
from typing import Any, Callable, Dict

from torch import nn

# Class-typed parameter values that may appear in a config, by dotted path (no arbitrary imports).
CLASS_PARAM_TABLE: Dict[str, type] = {
    'torch.nn.modules.batchnorm.BatchNorm2d': nn.BatchNorm2d,
    'torch.nn.BatchNorm2d': nn.BatchNorm2d,
    'torch.nn.modules.batchnorm.SyncBatchNorm': nn.BatchNorm2d,  # same function at inference time
}


def _class_path(cls: type) -> str:
    return f'{cls.__module__}.{cls.__qualname__}'


def _public_class_path(cls: type) -> str:
    """The dotted path written into checkpoints; classes can override it with ``_config_class_path``."""
    return getattr(cls, '_config_class_path', None) or _class_path(cls)


def _defaults(cls: type) -> Dict[str, Any]:
    """Defaulted constructor arguments of ``cls`` and of its bases (the reference includes the base's)."""
    out: Dict[str, Any] = {}
    for klass in cls.__mro__:
        if klass is nn.Module or klass is object:
            break
        init = klass.__dict__.get('__init__')
        if init is None:
            continue
        init = getattr(init, '__wrapped__', init)
        for name, p in inspect.signature(init).parameters.items():
            if name in ('self', 'args', 'kwargs') or p.default is inspect.Parameter.empty:
                continue
            out.setdefault(name, p.default)
    return out


def _encode(value: Any) -> Dict[str, Any]:
    if inspect.isclass(value):
        return {'type': 'class', 'value': _class_path(value)}
    return {'type': 'builtin', 'value': value}


def serialize(init: Callable) -> Callable:
    """Decorator for ``__init__``: store the call as ``self._config`` (RITM format)."""
    sig = inspect.signature(init)

    @functools.wraps(init)
    def wrapper(self, *args, **kwargs):
        sig.bind(self, *args, **kwargs)  # raises TypeError on a bad call, like the plain constructor
        names = [n for n in sig.parameters if n != 'self']
        params: Dict[str, Dict[str, Any]] = {}
        for name, value in list(zip(names, args)) + list(kwargs.items()):  # call order, as the reference
            params[name] = dict(_encode(value), specified=True)
        for name, value in _defaults(type(self)).items():
            if name not in params:
                params[name] = dict(_encode(value), specified=False)
        init(self, *args, **kwargs)
        self._config = {'class': _public_class_path(type(self)), 'params': params}

    return wrapper


def build_from_config(config: Dict[str, Any], class_table: Dict[str, type], **overrides: Any) -> nn.Module:
    """Instantiate ``config['class']`` through ``class_table``, passing every specified argument or
    argument that differs from the class default (as the reference loader does).

    Raises ``KeyError`` for a class that is not in the table and ``TypeError`` for unknown parameters;
    the checkpoint loader turns both into :class:`isegm.errors.CheckpointError`.
    """
    cls = class_table[config['class']]
    defaults = _defaults(cls)
    kwargs: Dict[str, Any] = {}
    for name, p in config.get('params', {}).items():
        value = p.get('value')
        if p.get('type') == 'class':
            value = CLASS_PARAM_TABLE[value]
        elif isinstance(value, list) and name == 'norm_mean_std':
            value = tuple(value)
        if p.get('specified', False) or name not in defaults or defaults[name] != value:
            kwargs[name] = value
    kwargs.update(overrides)
    return cls(**kwargs)
