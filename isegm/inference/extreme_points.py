"""Extreme points of a mask (left, right, top, bottom), as DEXTR defines them, in (y, x)."""
from __future__ import annotations

from typing import Optional

import numpy as np

from isegm.errors import InputError


def extreme_points_from_mask(mask: np.ndarray, pert: int = 0,
                             rng: Optional[np.random.Generator] = None) -> np.ndarray:
    """4 x 2 int array of (y, x): leftmost, rightmost, topmost, bottommost object pixels.

    Among the pixels within ``pert`` of an extreme, ``rng`` picks one at random (training jitter, as the
    DEXTR recipe does); without ``rng`` the middle one of them is taken, so evaluation is deterministic.
    """
    ys, xs = np.nonzero(np.asarray(mask) > 0.5 if np.asarray(mask).dtype != bool else mask)
    if ys.size == 0:
        raise InputError('the mask is empty: extreme points need at least one object pixel')

    def pick(candidates: np.ndarray, order_key: np.ndarray) -> list:
        idx = np.flatnonzero(candidates)
        if rng is not None:
            j = idx[rng.integers(len(idx))]
        else:
            idx = idx[np.argsort(order_key[idx], kind='stable')]
            j = idx[len(idx) // 2]
        return [int(ys[j]), int(xs[j])]

    return np.array([pick(xs <= xs.min() + pert, ys), pick(xs >= xs.max() - pert, ys),
                     pick(ys <= ys.min() + pert, xs), pick(ys >= ys.max() - pert, xs)], dtype=np.int64)
