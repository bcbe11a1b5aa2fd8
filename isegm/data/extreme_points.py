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
from isegm.utils.extreme_geometry import (crop_with_zero_pad, extreme_points_from_mask, gaussian_heatmap,
                                          rescale_to_range)


def extreme_points(mask: np.ndarray, pert: int = 0) -> np.ndarray:
    """``4 x 2`` ``(x, y)`` points: left, right, top, bottom; each drawn among the mask pixels within
    ``pert`` of the extreme coordinate (numpy's global random state, so worker seeding applies)."""
    rng = np.random.default_rng(np.random.randint(2 ** 31))
    return extreme_points_from_mask(mask, pert=pert, rng=rng)[:, ::-1].copy()


def points_heatmap(points: np.ndarray, height: int, width: int, sigma: float = 10.0) -> np.ndarray:
    """DEXTR heatmap of ``(x, y)`` points, scaled to 0..255 (float32), exactly as inference builds it."""
    return rescale_to_range(gaussian_heatmap((height, width), points, sigma)).astype(np.float32)


def crop_from_mask(image: np.ndarray, mask: np.ndarray, relax: int) -> Tuple[np.ndarray, Tuple[int, int, int, int]]:
    """Crop the mask's bounding box grown by ``relax`` px, zero-padded where it leaves the image.
    Returns the crop and the box ``(x0, y0, x1, y1)`` (inclusive)."""
    ys, xs = np.nonzero(mask)
    box = (int(xs.min()) - relax, int(ys.min()) - relax, int(xs.max()) + relax, int(ys.max()) + relax)
    return crop_with_zero_pad(image, box), box


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
