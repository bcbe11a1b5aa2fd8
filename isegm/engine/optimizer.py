"""Optimizer construction honouring per-parameter ``lr_mult`` tags (set with ``LRMult``)."""
from __future__ import annotations

import logging
from typing import Any, Dict, Optional

import torch
from torch import nn

logger = logging.getLogger(__name__)

_OPTIMIZERS = {'adam': torch.optim.Adam, 'adamw': torch.optim.AdamW, 'sgd': torch.optim.SGD}


def get_optimizer(model: nn.Module, name: str = 'adam', params: Optional[Dict[str, Any]] = None
                  ) -> torch.optim.Optimizer:
    """One parameter group per parameter with ``lr = base_lr * lr_mult`` (RITM's get_optimizer)."""
    params = dict(params or {})
    if name.lower() not in _OPTIMIZERS:
        raise ValueError(f'unknown optimizer {name!r}; use one of {sorted(_OPTIMIZERS)}')
    base_lr = params.get('lr', 1e-3)
    groups = []
    for p in model.parameters():
        if not p.requires_grad:
            continue
        mult = getattr(p, 'lr_mult', 1.0)
        groups.append({'params': [p], 'lr': base_lr * mult})
    return _OPTIMIZERS[name.lower()](groups, **params)
