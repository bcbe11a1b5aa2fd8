"""Extreme-point geometry of DEXTR: the points of a mask, box, zero-padded crop, resize, Gaussian heatmap,
paste-back. Shared by training (isegm.data) and inference (isegm.inference), so both encode alike.

Each function reproduces one step of DEXTR-PyTorch's ``demo.py`` / ``dataloaders/helpers.py``
numerically (same dtypes, same operation order, same OpenCV calls). Points here are integer
``(x, y)`` arrays, as DEXTR stores them; boxes are ``(x_min, y_min, x_max, y_max)``, inclusive.
"""
from __future__ import annotations

from typing import Optional, Tuple

import cv2
import numpy as np

from isegm.errors import InputError

Box = Tuple[int, int, int, int]


def extreme_points_bbox(points_xy: np.ndarray, pad: int, image_hw: Optional[Tuple[int, int]] = None) -> Box:
    """Box around ``points_xy`` (K x 2 ints, ``(x, y)``) enlarged by ``pad`` on every side.

    With ``image_hw`` None the box is not clamped and may leave the image (DEXTR's zero-pad mode);
    otherwise it is clamped to the image.
    """
    pts = np.asarray(points_xy)
    x_min, y_min = int(pts[:, 0].min()) - pad, int(pts[:, 1].min()) - pad
    x_max, y_max = int(pts[:, 0].max()) + pad, int(pts[:, 1].max()) + pad
    if image_hw is not None:
        h, w = image_hw
        x_min, y_min, x_max, y_max = max(x_min, 0), max(y_min, 0), min(x_max, w - 1), min(y_max, h - 1)
    return x_min, y_min, x_max, y_max


def _overlap(bbox: Box, image_hw: Tuple[int, int]) -> Optional[Tuple[slice, slice, slice, slice]]:
    """(image rows, image cols, crop rows, crop cols) of the part of ``bbox`` inside the image."""
    h, w = image_hw
    x0, y0, x1, y1 = max(bbox[0], 0), max(bbox[1], 0), min(bbox[2], w - 1), min(bbox[3], h - 1)
    if x0 > x1 or y0 > y1:
        return None
    return (slice(y0, y1 + 1), slice(x0, x1 + 1),
            slice(y0 - bbox[1], y1 - bbox[1] + 1), slice(x0 - bbox[0], x1 - bbox[0] + 1))


def crop_with_zero_pad(image: np.ndarray, bbox: Box) -> np.ndarray:
    """Crop ``bbox`` (inclusive) out of ``image`` (H x W or H x W x C); parts outside the image are 0."""
    out = np.zeros((bbox[3] - bbox[1] + 1, bbox[2] - bbox[0] + 1) + image.shape[2:], dtype=image.dtype)
    region = _overlap(bbox, image.shape[:2])
    if region is not None:
        rows, cols, crop_rows, crop_cols = region
        out[crop_rows, crop_cols] = image[rows, cols]
    return out


def resize_crop(crop: np.ndarray, size: int) -> np.ndarray:
    """Resize a crop to ``size x size`` as DEXTR's ``fixed_resize``: bicubic, but nearest-neighbour when
    every value is 0 or 1 (a quirk of the reference kept for exactness). Returns float32."""
    binary = bool(((crop == 0) | (crop == 1)).all())
    interp = cv2.INTER_NEAREST if binary else cv2.INTER_CUBIC
    return cv2.resize(crop, (size, size), interpolation=interp).astype(np.float32)


def points_to_crop_grid(points_xy: np.ndarray, bbox: Box, crop_hw: Tuple[int, int], size: int) -> np.ndarray:
    """Map image points into the ``size x size`` network input: ``int(size * (p - bbox_min) / crop_size)``
    per axis (x by the crop width, y by its height), truncated as DEXTR does."""
    rel = np.asarray(points_xy, dtype=np.int64) - np.array([bbox[0], bbox[1]], dtype=np.int64)
    return (size * rel * np.array([1 / crop_hw[1], 1 / crop_hw[0]])).astype(np.int64)


def gaussian_heatmap(shape_hw: Tuple[int, int], centers_xy: np.ndarray, sigma: float = 10) -> np.ndarray:
    """Max over ``centers_xy`` of ``exp(-4 ln2 ((x - x0)^2 + (y - y0)^2) / sigma^2)`` (float64, H x W).

    ``sigma`` acts as the full width at half maximum, as in DEXTR's ``make_gaussian``.
    """
    h, w = shape_hw
    x = np.arange(0, w, 1, float)
    y = np.arange(0, h, 1, float)[:, np.newaxis]
    heat = np.zeros((h, w), dtype=np.float64)
    for x0, y0 in np.asarray(centers_xy).reshape(-1, 2):
        heat = np.maximum(heat, np.exp(-4 * np.log(2) * ((x - x0) ** 2 + (y - y0) ** 2) / sigma ** 2))
    return heat


def rescale_to_range(values: np.ndarray, max_value: float = 255) -> np.ndarray:
    """``max_value * (v - min) / max(max - min, 1e-8)`` in the dtype of ``values`` (DEXTR's cstm_normalize)."""
    return max_value * (values - values.min()) / max(values.max() - values.min(), 1e-8)


def paste_crop_probability(prob: np.ndarray, bbox: Box, image_hw: Tuple[int, int],
                           keep_box: Optional[Box] = None) -> np.ndarray:
    """Resize ``prob`` (float32, any size) bicubically to the size of ``bbox`` and paste it into a zero
    ``image_hw`` map (only the part inside the image); with ``keep_box`` everything outside that box
    (inclusive) is zeroed afterwards. Returns float32; bicubic overshoot outside [0, 1] is kept."""
    crop_w, crop_h = bbox[2] - bbox[0] + 1, bbox[3] - bbox[1] + 1
    resized = cv2.resize(prob, (crop_w, crop_h), interpolation=cv2.INTER_CUBIC)
    full = np.zeros(image_hw, dtype=np.float32)
    region = _overlap(bbox, image_hw)
    if region is not None:
        rows, cols, crop_rows, crop_cols = region
        full[rows, cols] = resized[crop_rows, crop_cols]
    if keep_box is not None:
        kept = np.zeros_like(full)
        region = _overlap(keep_box, image_hw)
        if region is not None:
            rows, cols = region[:2]
            kept[rows, cols] = full[rows, cols]
        full = kept
    return full


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
