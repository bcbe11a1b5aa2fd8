"""Clicks, the click history of one object, and the evaluation oracle that chooses the next click.

A click is ``(y, x)`` in image pixels plus its polarity; ``indx`` is its 0-based order in the session.
:class:`Clicker` keeps the ordered list (with undo/redo) and, when it knows the ground truth, simulates
the user of the standard NoC protocol (:meth:`Clicker.make_next_click`), exactly as RITM / f-BRS do.
"""
from __future__ import annotations

import copy
import math
from typing import Any, Iterable, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from isegm.errors import InputError

__all__ = ['Click', 'Clicker']


class Click:
    """One click: ``is_positive``, ``coords = (y, x)`` in pixels of the image it refers to, ``indx``."""

    __slots__ = ('is_positive', 'coords', 'indx')

    def __init__(self, is_positive: bool, coords: Sequence[float], indx: Optional[int] = None):
        self.is_positive = bool(is_positive)
        self.coords = tuple(coords)
        self.indx = indx

    @property
    def coords_and_indx(self) -> Tuple[float, float, Optional[int]]:
        """``(y, x, indx)``, the row this click takes in a points tensor."""
        return (*self.coords, self.indx)

    def copy(self, **kwargs: Any) -> 'Click':
        """A copy with the given attributes replaced, e.g. ``click.copy(coords=(y2, x2))``."""
        new = Click(self.is_positive, copy.deepcopy(self.coords), self.indx)
        for name, value in kwargs.items():
            if name not in self.__slots__:
                raise InputError(f'Click has no attribute {name!r}; use one of {self.__slots__}')
            setattr(new, name, tuple(value) if name == 'coords' else value)
        return new

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Click):
            return NotImplemented
        return (self.is_positive == other.is_positive and tuple(self.coords) == tuple(other.coords)
                and self.indx == other.indx)

    def __repr__(self) -> str:
        kind = 'positive' if self.is_positive else 'negative'
        return f'Click({kind}, coords={self.coords}, indx={self.indx})'

    def __getstate__(self):
        return self.is_positive, self.coords, self.indx

    def __setstate__(self, state):
        self.is_positive, self.coords, self.indx = state


class Clicker:
    """Ordered clicks of one object, with undo/redo and the NoC next-click oracle.

    Args:
        gt_mask: optional ``H x W`` ground truth (1 object, 0 background, ``ignore_label`` ignored);
            needed by :meth:`make_next_click`, and it fixes the image shape clicks are checked against.
        init_clicks: clicks added right away, in order.
        ignore_label: the gt value excluded from both error regions.
        click_indx_offset: index given to the first click (clicks are numbered from it).
        image_shape: ``(H, W)`` to check clicks against when there is no ``gt_mask``.
    """

    def __init__(self, gt_mask: Optional[np.ndarray] = None, init_clicks: Optional[Iterable[Click]] = None,
                 ignore_label: int = -1, click_indx_offset: int = 0,
                 image_shape: Optional[Tuple[int, int]] = None):
        self.click_indx_offset = click_indx_offset
        self.ignore_label = ignore_label
        if gt_mask is not None:
            gt_mask = np.asarray(gt_mask)
            if gt_mask.ndim != 2:
                raise InputError(f'gt_mask must be a 2-d H x W array, got shape {gt_mask.shape}')
            self.gt_mask: Optional[np.ndarray] = gt_mask == 1
            self.not_ignore_mask: Optional[np.ndarray] = gt_mask != ignore_label
            self.image_shape: Optional[Tuple[int, int]] = tuple(gt_mask.shape)
        else:
            self.gt_mask = None
            self.not_ignore_mask = None
            self.image_shape = tuple(image_shape) if image_shape is not None else None

        self.clicks_list: List[Click] = []
        self._redo_stack: List[Click] = []
        self.num_pos_clicks = 0
        self.num_neg_clicks = 0
        self.not_clicked_map: Optional[np.ndarray] = None
        self.reset_clicks()

        if init_clicks is not None:
            for click in init_clicks:
                self.add_click(click)

    # -- oracle ------------------------------------------------------------------------------------------
    def make_next_click(self, pred_mask: np.ndarray) -> Click:
        """Add (and return) the click a user would make to fix ``pred_mask`` (bool ``H x W``).

        The click goes to the interior-most pixel of the larger error region: the maxima of the exact
        Euclidean distance transforms of the false-negative and false-positive regions (each padded with
        a one-pixel background border, zero at already clicked pixels) are compared; positive iff the
        false-negative maximum is strictly larger; the first pixel in row-major order at the maximum wins.
        """
        if self.gt_mask is None:
            raise InputError('make_next_click needs the ground truth: create the Clicker with gt_mask=...')
        pred_mask = np.asarray(pred_mask)
        if pred_mask.shape != self.gt_mask.shape:
            raise InputError(f'pred_mask has shape {pred_mask.shape}, the ground truth {self.gt_mask.shape}')
        click = self._get_next_click(pred_mask.astype(bool))
        self.add_click(click)
        return self.clicks_list[-1]

    def _get_next_click(self, pred_mask: np.ndarray) -> Click:
        fn_mask = self.gt_mask & ~pred_mask & self.not_ignore_mask
        fp_mask = ~self.gt_mask & pred_mask & self.not_ignore_mask

        fn_dt = _padded_distance_transform(fn_mask) * self.not_clicked_map
        fp_dt = _padded_distance_transform(fp_mask) * self.not_clicked_map
        fn_max = fn_dt.max()
        fp_max = fp_dt.max()

        is_positive = bool(fn_max > fp_max)
        dt, dt_max = (fn_dt, fn_max) if is_positive else (fp_dt, fp_max)
        flat_index = int(np.flatnonzero(dt == dt_max)[0])
        y, x = divmod(flat_index, dt.shape[1])
        return Click(is_positive=is_positive, coords=(y, x))

    # -- history -----------------------------------------------------------------------------------------
    def add_click(self, click: Click) -> Click:
        """Append a copy of ``click`` numbered ``click_indx_offset + len(self)``; clears the redo history.

        Raises :class:`InputError` when the click lies outside the image (if the shape is known).
        """
        self._append(click)
        self._redo_stack.clear()
        return self.clicks_list[-1]

    def _append(self, click: Click) -> None:
        if not isinstance(click, Click):
            raise InputError(f'add_click expects a Click, got {type(click).__name__}')
        self._check_coords(click.coords)
        click = click.copy(indx=self.click_indx_offset + len(self.clicks_list))
        if click.is_positive:
            self.num_pos_clicks += 1
        else:
            self.num_neg_clicks += 1
        self.clicks_list.append(click)
        if self.not_clicked_map is not None:
            self.not_clicked_map[int(click.coords[0]), int(click.coords[1])] = False

    def undo_click(self) -> Optional[Click]:
        """Remove the last click (it can be redone); returns it, or None when there is none."""
        if not self.clicks_list:
            return None
        click = self.clicks_list.pop()
        if click.is_positive:
            self.num_pos_clicks -= 1
        else:
            self.num_neg_clicks -= 1
        if self.not_clicked_map is not None:
            y, x = int(click.coords[0]), int(click.coords[1])
            self.not_clicked_map[y, x] = not any(int(c.coords[0]) == y and int(c.coords[1]) == x
                                                 for c in self.clicks_list)
        self._redo_stack.append(click)
        return click

    remove_last_click = undo_click
    _remove_last_click = undo_click

    def redo_click(self) -> Optional[Click]:
        """Re-add the most recently undone click; returns it, or None when there is nothing to redo."""
        if not self._redo_stack:
            return None
        self._append(self._redo_stack.pop())
        return self.clicks_list[-1]

    @property
    def can_undo(self) -> bool:
        return bool(self.clicks_list)

    @property
    def can_redo(self) -> bool:
        return bool(self._redo_stack)

    def get_clicks(self, clicks_limit: Optional[int] = None) -> List[Click]:
        """The first ``clicks_limit`` clicks (all when None), in order."""
        return self.clicks_list[:clicks_limit]

    def reset_clicks(self) -> None:
        """Forget every click (and the redo history)."""
        if self.gt_mask is not None:
            self.not_clicked_map = np.ones_like(self.gt_mask, dtype=bool)
        self.num_pos_clicks = 0
        self.num_neg_clicks = 0
        self.clicks_list = []
        self._redo_stack = []

    def get_state(self) -> List[Click]:
        """A deep copy of the click list (what :meth:`set_state` restores)."""
        return copy.deepcopy(self.clicks_list)

    def set_state(self, state: Iterable[Click]) -> None:
        """Replace the clicks by ``state`` (as returned by :meth:`get_state`)."""
        self.reset_clicks()
        for click in state:
            self._append(click)

    def __len__(self) -> int:
        return len(self.clicks_list)

    def _check_coords(self, coords: Sequence[float]) -> None:
        if len(coords) != 2:
            raise InputError(f'click coords must be (y, x), got {coords!r}')
        y, x = coords
        try:
            y, x = float(y), float(x)
        except (TypeError, ValueError):
            raise InputError(f'click coords must be numbers (y, x), got {coords!r}') from None
        if not (math.isfinite(y) and math.isfinite(x)):
            raise InputError(f'click coords must be finite, got {coords!r}')
        if y < 0 or x < 0:
            raise InputError(f'click (y={y:g}, x={x:g}) lies outside the image: coordinates must be >= 0')
        if self.image_shape is not None:
            h, w = self.image_shape[:2]
            if y >= h or x >= w:
                raise InputError(f'click (y={y:g}, x={x:g}) lies outside the {h}x{w} image (H x W); '
                                 f'click inside 0 <= y < {h}, 0 <= x < {w}')


def _padded_distance_transform(mask: np.ndarray) -> np.ndarray:
    """Exact L2 distance of every True pixel to the nearest False one, the image border counting as False."""
    padded = np.pad(mask, ((1, 1), (1, 1)), mode='constant').astype(np.uint8)
    dist = cv2.distanceTransform(padded, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    return dist[1:-1, 1:-1]
