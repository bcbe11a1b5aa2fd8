"""DEXTR-style training samples: one object, flipped/scaled/rotated, cropped around its mask with a
relaxation margin (zero padding outside the image), resized to ``resolution``, with four extreme points
jittered by up to ``pert`` pixels turned into a Gaussian heatmap (``sigma``), as DEXTR's
``train_pascal.py`` does. Items: ``inputs`` (4 x R x R: RGB and heatmap in 0..255) and ``instances``
(1 x R x R, 1 object / 0 / -1 ignored).
"""
from __future__ import annotations

import random
from typing import Dict, Optional, Tuple

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from isegm.data.base import DSample, ISDataset
from isegm.data.transforms import Compose, HorizontalFlip, ScaleRotate


def extreme_points(mask: np.ndarray, pert: int = 0) -> np.ndarray:
    """``4 x 2`` ``(x, y)`` points: left, right, top, bottom; each drawn among the mask pixels within
    ``pert`` of the extreme coordinate (the extreme pixel itself when ``pert == 0``)."""
    ys, xs = np.nonzero(mask)

    def pick(sel):
        idx = np.flatnonzero(sel)
        i = idx[np.random.randint(len(idx))]
        return [xs[i], ys[i]]

    return np.array([pick(xs <= xs.min() + pert), pick(xs >= xs.max() - pert),
                     pick(ys <= ys.min() + pert), pick(ys >= ys.max() - pert)], dtype=np.int64)


def points_heatmap(points: np.ndarray, height: int, width: int, sigma: float = 10.0) -> np.ndarray:
    """Max over points of ``exp(-4 ln2 ((x-x0)^2 + (y-y0)^2) / sigma^2)``, scaled to 0..255 (DEXTR)."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    h = np.zeros((height, width), np.float64)
    for x0, y0 in points:
        h = np.maximum(h, np.exp(-4 * np.log(2) * ((xx - x0) ** 2 + (yy - y0) ** 2) / sigma ** 2))
    h = 255 * (h - h.min()) / max(h.max() - h.min(), 1e-8)
    return h.astype(np.float32)


def crop_from_mask(image: np.ndarray, mask: np.ndarray, relax: int) -> Tuple[np.ndarray, Tuple[int, int, int, int]]:
    """Crop the mask's bounding box grown by ``relax`` px, zero-padded where it leaves the image.
    Returns the crop and the box ``(x0, y0, x1, y1)`` (inclusive)."""
    ys, xs = np.nonzero(mask)
    x0, y0, x1, y1 = xs.min() - relax, ys.min() - relax, xs.max() + relax, ys.max() + relax
    h, w = mask.shape
    out = np.zeros((y1 - y0 + 1, x1 - x0 + 1) + image.shape[2:], image.dtype)
    sy0, sx0, sy1, sx1 = max(y0, 0), max(x0, 0), min(y1, h - 1), min(x1, w - 1)
    out[sy0 - y0:sy1 - y0 + 1, sx0 - x0:sx1 - x0 + 1] = image[sy0:sy1 + 1, sx0:sx1 + 1]
    return out, (x0, y0, x1, y1)


class ExtremePointsDataset(Dataset):
    """Wrap an ISDataset reader (its ``get_sample``) into DEXTR training items."""

    def __init__(self, reader: ISDataset, resolution: int = 512, relax: int = 30, sigma: float = 10.0,
                 pert: int = 5, min_object_area: int = 400, augment: bool = True, epoch_len: int = -1):
        self.reader = reader
        self.resolution, self.relax, self.sigma, self.pert = resolution, relax, sigma, pert
        self.min_object_area = min_object_area
        self.augmentator = Compose([HorizontalFlip(), ScaleRotate((-20, 20), (0.75, 1.25))]) if augment else None
        self.epoch_len = epoch_len

    def __len__(self) -> int:
        return self.epoch_len if self.epoch_len > 0 else len(self.reader.dataset_samples)

    def _pick(self, index: int) -> Tuple[DSample, int]:
        for attempt in range(20):
            i = random.randrange(len(self.reader.dataset_samples)) if (self.epoch_len > 0 or attempt) else index
            sample = self.reader.get_sample(i)
            sample.remove_small_objects(self.min_object_area)
            if sample.num_objects:
                return sample, np.random.randint(sample.num_objects)
        raise RuntimeError('ExtremePointsDataset: no object large enough found in 20 samples')

    def __getitem__(self, index: int) -> Dict[str, torch.Tensor]:
        sample, k = self._pick(index)
        sample = DSample(sample.image, sample.masks[:, :, k:k + 1], sample.ignore, sample.sample_id)
        if self.augmentator is not None:
            aug = self.augmentator(sample)
            if aug.num_objects and aug.masks[:, :, 0].sum() >= 16:
                sample = aug
        mask = sample.masks[:, :, 0] > 0
        label = mask.astype(np.float32)
        if sample.ignore is not None:
            label[sample.ignore & ~mask] = -1
        crop_img, _ = crop_from_mask(sample.image, mask, self.relax)
        crop_gt, _ = crop_from_mask(label, mask, self.relax)
        r = self.resolution
        crop_img = cv2.resize(crop_img, (r, r), interpolation=cv2.INTER_CUBIC).astype(np.float32)
        crop_gt = cv2.resize(crop_gt, (r, r), interpolation=cv2.INTER_NEAREST)
        points = extreme_points(crop_gt > 0.5, self.pert) if (crop_gt > 0.5).any() else np.zeros((4, 2), np.int64)
        heat = points_heatmap(points, r, r, self.sigma)
        inputs = np.concatenate([crop_img, heat[:, :, None]], axis=2).transpose(2, 0, 1)
        return {'inputs': torch.from_numpy(np.ascontiguousarray(inputs)),
                'instances': torch.from_numpy(crop_gt)[None]}
