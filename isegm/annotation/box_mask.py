"""A finished object's mask held as the content of its bounding box.

A full-size bool mask costs one byte per image pixel whatever the object's size: 24 MB per object on a
24 MP photo, so a few dozen objects took gigabytes. :class:`BoxMask` keeps only the object's box (the rest
of the image is False by definition) and gives the operations the annotation code needs without ever
making the full-size array, except where a full-size result is asked for (:meth:`BoxMask.to_array`).
Instances are immutable, like the arrays they replace.
"""
from __future__ import annotations

from typing import Optional, Sequence, Tuple

import numpy as np

from isegm.errors import InputError


def mask_box(mask: np.ndarray) -> Optional[Tuple[int, int, int, int]]:
    """(x0, y0, x1, y1) of the True pixels of an H x W mask (end exclusive), None for an empty mask."""
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(mask.any(axis=0))
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


class BoxMask:
    """Bool ``shape`` mask that is False outside ``crop``, which sits at rows ``y0:y0+h``, columns ``x0:x0+w``.

    The constructor trims the crop to its True pixels (0 x 0 for an empty mask) and keeps a read-only copy
    of its own (never a view of a larger array), so :attr:`box` is the mask's bounding box and no caller
    can change it.
    """

    __slots__ = ('shape', 'y0', 'x0', 'crop', '__weakref__')

    def __init__(self, shape: Sequence[int], y0: int, x0: int, crop: np.ndarray):
        crop = np.asarray(crop)
        h, w = int(shape[0]), int(shape[1])
        y0, x0 = int(y0), int(x0)
        if crop.dtype != bool or crop.ndim != 2:
            raise InputError(f'a BoxMask crop must be a 2-d bool array, got {crop.dtype} {crop.shape}')
        if crop.size and not (0 <= y0 and 0 <= x0 and y0 + crop.shape[0] <= h and x0 + crop.shape[1] <= w):
            raise InputError(f'a {crop.shape} crop at (y={y0}, x={x0}) does not fit a {h}x{w} mask')
        box = mask_box(crop) if crop.size else None
        if box is None:
            crop, y0, x0 = np.zeros((0, 0), bool), 0, 0
        else:                                   # tight to the True pixels, and ours alone (never a view)
            c0, r0, c1, r1 = box
            crop = crop[r0:r1, c0:c1].copy()
            y0, x0 = y0 + r0, x0 + c0
        crop.flags.writeable = False
        self.shape: Tuple[int, int] = (h, w)
        self.y0, self.x0 = y0, x0
        self.crop = crop

    # ---------------------------------------------------------------- construction
    @classmethod
    def from_mask(cls, mask: np.ndarray) -> 'BoxMask':
        """The box form of a full-size H x W mask (any dtype: nonzero is True)."""
        mask = np.asarray(mask)
        if mask.ndim != 2:
            raise InputError(f'a mask must be H x W, got shape {mask.shape}')
        return cls(mask.shape, 0, 0, mask != 0 if mask.dtype != bool else mask)

    # ---------------------------------------------------------------- facts
    @property
    def box(self) -> Optional[Tuple[int, int, int, int]]:
        """(x0, y0, x1, y1) of the True pixels (end exclusive), None when empty."""
        if not self.crop.size:
            return None
        return self.x0, self.y0, self.x0 + self.crop.shape[1], self.y0 + self.crop.shape[0]

    def any(self) -> bool:
        return bool(self.crop.size)          # a tight crop holds a True pixel

    def count(self) -> int:
        return int(np.count_nonzero(self.crop))

    @property
    def nbytes(self) -> int:
        return self.crop.nbytes

    # ---------------------------------------------------------------- reading
    def to_array(self) -> np.ndarray:
        """The full-size bool mask (a new H x W array)."""
        out = np.zeros(self.shape, bool)
        if self.crop.size:
            h, w = self.crop.shape
            out[self.y0:self.y0 + h, self.x0:self.x0 + w] = self.crop
        return out

    def window(self, y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
        """``to_array()[y0:y1, x0:x1]`` (a new array; bounds inside the mask) without the full-size array."""
        out = np.zeros((max(0, y1 - y0), max(0, x1 - x0)), bool)
        if self.crop.size:
            h, w = self.crop.shape
            ty0, ty1 = max(y0, self.y0), min(y1, self.y0 + h)
            tx0, tx1 = max(x0, self.x0), min(x1, self.x0 + w)
            if ty0 < ty1 and tx0 < tx1:
                out[ty0 - y0:ty1 - y0, tx0 - x0:tx1 - x0] = \
                    self.crop[ty0 - self.y0:ty1 - self.y0, tx0 - self.x0:tx1 - self.x0]
        return out

    def take(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """``to_array()[np.ix_(rows, cols)]`` for 1-d index arrays inside the mask (a resampled view)."""
        rows, cols = np.asarray(rows, np.intp).ravel(), np.asarray(cols, np.intp).ravel()
        out = np.zeros((rows.size, cols.size), bool)
        if self.crop.size:
            r, c = rows - self.y0, cols - self.x0
            r_in = (r >= 0) & (r < self.crop.shape[0])
            c_in = (c >= 0) & (c < self.crop.shape[1])
            if r_in.any() and c_in.any():
                out[np.ix_(r_in, c_in)] = self.crop[np.ix_(r[r_in], c[c_in])]
        return out

    # ---------------------------------------------------------------- editing (new instances)
    def minus(self, other: 'BoxMask') -> 'BoxMask':
        """This mask without the pixels of ``other`` (same shape)."""
        self._check_shape(other.shape)
        if not self.crop.size or not other.crop.size:
            return self
        x0, y0, x1, y1 = self.box
        cut = other.window(y0, y1, x0, x1)
        if not cut.any():
            return self
        return BoxMask(self.shape, y0, x0, self.crop & ~cut)

    def clear_from(self, mask: np.ndarray) -> np.ndarray:
        """Set this mask's pixels to False in the full-size bool array ``mask`` (in place); returns it."""
        self._check_shape(mask.shape)
        if self.crop.size:
            x0, y0, x1, y1 = self.box
            mask[y0:y1, x0:x1] &= ~self.crop
        return mask

    def _check_shape(self, shape: Tuple[int, ...]) -> None:
        if tuple(shape) != self.shape:
            raise InputError(f'a {tuple(shape)} mask cannot be combined with a {self.shape} one')

    def __repr__(self) -> str:
        return f'BoxMask(shape={self.shape}, box={self.box})'
