"""Augmentations on DSample (image, object masks, ignore mask), written with cv2/numpy.

They mirror the albumentations pipeline of the RITM recipes (UniformRandomResize, HorizontalFlip,
PadIfNeeded, RandomCrop, RandomBrightnessContrast, RGBShift) plus ScaleRotate for DEXTR-style training.
Every transform is ``sample -> new sample`` and uses numpy's global RNG (seeded per DataLoader worker).
"""
from __future__ import annotations

from typing import Optional, Sequence, Tuple

import cv2
import numpy as np

from isegm.data.base import DSample


_CV_MAX_CHANNELS = 128


def _resize_masks(masks: np.ndarray, size: Tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour resize of ``H x W x K`` masks to ``size=(w, h)``, in contiguous chunks of
    ``_CV_MAX_CHANNELS`` (OpenCV 5 accepts at most 128 channels per array, OpenCV 4 512)."""
    if masks.shape[2] == 0:
        return np.zeros((size[1], size[0], 0), dtype=masks.dtype)
    step = _CV_MAX_CHANNELS
    parts = [cv2.resize(np.ascontiguousarray(masks[:, :, i:i + step]), size, interpolation=cv2.INTER_NEAREST)
             for i in range(0, masks.shape[2], step)]
    parts = [p[:, :, None] if p.ndim == 2 else p for p in parts]
    return np.concatenate(parts, axis=2)


def _with(sample: DSample, image, masks, ignore) -> DSample:
    return DSample(image, masks, ignore, sample.sample_id)


class Compose:
    def __init__(self, transforms: Sequence):
        self.transforms = list(transforms)

    def __call__(self, sample: DSample) -> DSample:
        for t in self.transforms:
            sample = t(sample)
        return sample


class Resize:
    """Resize to a fixed ``(height, width)``."""

    def __init__(self, height: int, width: int):
        self.size = (width, height)

    def __call__(self, s: DSample) -> DSample:
        image = cv2.resize(s.image, self.size, interpolation=cv2.INTER_LINEAR)
        ignore = None if s.ignore is None else cv2.resize(s.ignore.astype(np.uint8), self.size,
                                                           interpolation=cv2.INTER_NEAREST) > 0
        return _with(s, image, _resize_masks(s.masks, self.size), ignore)


class UniformRandomResize:
    """Scale the image by a factor drawn uniformly from ``scale_range``."""

    def __init__(self, scale_range: Tuple[float, float] = (0.9, 1.1)):
        self.scale_range = scale_range

    def __call__(self, s: DSample) -> DSample:
        f = np.random.uniform(*self.scale_range)
        h, w = s.image.shape[:2]
        return Resize(max(1, int(round(h * f))), max(1, int(round(w * f))))(s)


class LongestMaxSize:
    """Shrink so that the longer side is at most ``max_size`` (never enlarges)."""

    def __init__(self, max_size: int):
        self.max_size = max_size

    def __call__(self, s: DSample) -> DSample:
        h, w = s.image.shape[:2]
        f = self.max_size / max(h, w)
        if f >= 1:
            return s
        return Resize(max(1, int(round(h * f))), max(1, int(round(w * f))))(s)


class HorizontalFlip:
    def __init__(self, p: float = 0.5):
        self.p = p

    def __call__(self, s: DSample) -> DSample:
        if np.random.rand() >= self.p:
            return s
        ignore = None if s.ignore is None else s.ignore[:, ::-1].copy()
        return _with(s, s.image[:, ::-1].copy(), s.masks[:, ::-1].copy(), ignore)


class PadIfNeeded:
    """Zero-pad (bottom/right split evenly, as albumentations' centre padding) up to a minimum size."""

    def __init__(self, min_height: int, min_width: int):
        self.min_height, self.min_width = min_height, min_width

    def __call__(self, s: DSample) -> DSample:
        h, w = s.image.shape[:2]
        ph, pw = max(0, self.min_height - h), max(0, self.min_width - w)
        if not ph and not pw:
            return s
        pad = ((ph // 2, ph - ph // 2), (pw // 2, pw - pw // 2))
        image = np.pad(s.image, pad + ((0, 0),))
        masks = np.pad(s.masks, pad + ((0, 0),))
        ignore = None if s.ignore is None else np.pad(s.ignore, pad)
        return _with(s, image, masks, ignore)


class RandomCrop:
    """Crop ``height x width`` at a random position (the image must be at least that big)."""

    def __init__(self, height: int, width: int):
        self.height, self.width = height, width

    def __call__(self, s: DSample) -> DSample:
        h, w = s.image.shape[:2]
        y0 = np.random.randint(0, h - self.height + 1)
        x0 = np.random.randint(0, w - self.width + 1)
        sl = (slice(y0, y0 + self.height), slice(x0, x0 + self.width))
        ignore = None if s.ignore is None else s.ignore[sl].copy()
        return _with(s, s.image[sl].copy(), s.masks[sl].copy(), ignore)


class RandomBrightnessContrast:
    """``img * (1 + c) + b * 255`` with ``b`` from ``brightness_limit`` and ``c`` from ``contrast_limit``."""

    def __init__(self, brightness_limit=(-0.2, 0.2), contrast_limit=(-0.2, 0.2), p: float = 0.5):
        self.b, self.c, self.p = brightness_limit, contrast_limit, p

    def __call__(self, s: DSample) -> DSample:
        if np.random.rand() >= self.p:
            return s
        alpha = 1.0 + np.random.uniform(*self.c)
        beta = np.random.uniform(*self.b) * 255.0
        image = np.clip(s.image.astype(np.float32) * alpha + beta, 0, 255).astype(np.uint8)
        return _with(s, image, s.masks, s.ignore)


class RGBShift:
    """Add an independent random offset to each colour channel."""

    def __init__(self, r_shift_limit: int = 20, g_shift_limit: int = 20, b_shift_limit: int = 20, p: float = 0.5):
        self.limits, self.p = (r_shift_limit, g_shift_limit, b_shift_limit), p

    def __call__(self, s: DSample) -> DSample:
        if np.random.rand() >= self.p:
            return s
        shift = np.array([np.random.uniform(-l, l) for l in self.limits], dtype=np.float32)
        image = np.clip(s.image.astype(np.float32) + shift, 0, 255).astype(np.uint8)
        return _with(s, image, s.masks, s.ignore)


class ScaleRotate:
    """Random rotation (degrees) and scale about the image centre, as DEXTR's ``ScaleNRotate``."""

    def __init__(self, rots: Tuple[float, float] = (-20, 20), scales: Tuple[float, float] = (0.75, 1.25)):
        self.rots, self.scales = rots, scales

    def __call__(self, s: DSample) -> DSample:
        h, w = s.image.shape[:2]
        m = cv2.getRotationMatrix2D((w / 2, h / 2), np.random.uniform(*self.rots), np.random.uniform(*self.scales))
        image = cv2.warpAffine(s.image, m, (w, h), flags=cv2.INTER_CUBIC)
        masks = np.stack([cv2.warpAffine(s.masks[:, :, i], m, (w, h), flags=cv2.INTER_NEAREST)
                          for i in range(s.num_objects)], axis=2) if s.num_objects else s.masks
        ignore = None if s.ignore is None else cv2.warpAffine(s.ignore.astype(np.uint8), m, (w, h),
                                                              flags=cv2.INTER_NEAREST) > 0
        return _with(s, image, masks, ignore)


def click_train_augmentator(crop_size: Tuple[int, int] = (320, 480), scale_range=(0.75, 1.40),
                            max_size: Optional[int] = None) -> Compose:
    """The RITM ITER-M training augmentation for ``crop_size=(height, width)``."""
    pre = [LongestMaxSize(max_size)] if max_size else []
    return Compose(pre + [
        UniformRandomResize(scale_range=scale_range), HorizontalFlip(),
        PadIfNeeded(*crop_size), RandomCrop(*crop_size),
        RandomBrightnessContrast(brightness_limit=(-0.25, 0.25), contrast_limit=(-0.15, 0.4), p=0.75),
        RGBShift(10, 10, 10, p=0.75)])


def click_val_augmentator(crop_size: Tuple[int, int] = (320, 480)) -> Compose:
    return Compose([PadIfNeeded(*crop_size), RandomCrop(*crop_size)])
