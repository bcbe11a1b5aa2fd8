"""DSample (one training image with its object masks) and ISDataset (the base of all training readers).

An ISDataset yields dicts of tensors: ``images`` (3 x H x W float in [0, 1]), ``points``
(2N x 3 float: N positive rows then N negative rows ``(y, x, order)``, padded with -1) and
``instances`` (1 x H x W float: 1 object, 0 background, -1 ignored).
"""
from __future__ import annotations

import logging
import random
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from isegm.errors import InputError

logger = logging.getLogger(__name__)


class DSample:
    """An image (``H x W x 3`` uint8 RGB) with ``K`` object masks (``H x W x K`` uint8 0/1) and an
    optional ignore mask (``H x W`` bool: pixels that are neither object nor background)."""

    def __init__(self, image: np.ndarray, masks: Optional[np.ndarray] = None, ignore: Optional[np.ndarray] = None,
                 sample_id=None):
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise InputError(f'DSample image must be H x W x 3 uint8, got {image.shape} {image.dtype}')
        h, w = image.shape[:2]
        if masks is None:
            masks = np.zeros((h, w, 0), dtype=np.uint8)
        if masks.ndim == 2:
            masks = masks[:, :, None]
        if masks.shape[:2] != (h, w):
            raise InputError(f'masks {masks.shape[:2]} do not match image {(h, w)} (sample {sample_id})')
        self.image = image
        self.masks = (masks > 0).astype(np.uint8)
        self.ignore = None if ignore is None else ignore.astype(bool)
        self.sample_id = sample_id

    @classmethod
    def from_label_map(cls, image: np.ndarray, labels: np.ndarray, ignore_label: Optional[int] = None,
                       sample_id=None) -> 'DSample':
        """Objects from an integer label image: 0 background, every other value one object."""
        ignore = labels == ignore_label if ignore_label is not None else None
        ids = [i for i in np.unique(labels) if i != 0 and i != ignore_label]
        masks = np.stack([labels == i for i in ids], axis=2) if ids else None
        return cls(image, masks, ignore, sample_id)

    @property
    def num_objects(self) -> int:
        return self.masks.shape[2]

    def remove_small_objects(self, min_area: int) -> None:
        if min_area > 0 and self.num_objects:
            keep = self.masks.reshape(-1, self.num_objects).sum(axis=0) >= min_area
            self.masks = self.masks[:, :, keep]

    def remove_objects(self, keep: Sequence[bool]) -> None:
        self.masks = self.masks[:, :, np.asarray(keep, dtype=bool)]


class ISDataset(Dataset):
    """Base of the training readers. Subclasses fill ``self.dataset_samples`` and implement
    ``get_sample(index) -> DSample``.

    ``epoch_len > 0`` makes an epoch that many random samples (RITM); ``keep_background_prob`` keeps,
    with that probability, a crop where no object survived (only negative clicks are then sampled).
    """

    def __init__(self, augmentator=None, points_sampler=None, min_object_area: int = 0,
                 keep_background_prob: float = 0.0, epoch_len: int = -1, max_aug_attempts: int = 10):
        from isegm.data.points_sampler import MultiPointSampler
        self.augmentator = augmentator
        self.points_sampler = points_sampler if points_sampler is not None else MultiPointSampler(12)
        self.min_object_area = min_object_area
        self.keep_background_prob = keep_background_prob
        self.epoch_len = epoch_len
        self.max_aug_attempts = max_aug_attempts
        self.dataset_samples: List = []

    def get_sample(self, index: int) -> DSample:
        raise NotImplementedError

    def __len__(self) -> int:
        return self.epoch_len if self.epoch_len > 0 else len(self.dataset_samples)

    def augment_sample(self, sample: DSample) -> DSample:
        if self.augmentator is None:
            return sample
        out = None
        for _ in range(self.max_aug_attempts):
            out = self.augmentator(sample)
            out.remove_small_objects(self.min_object_area)
            if out.num_objects > 0 or random.random() < self.keep_background_prob:
                return out
        return out

    def __getitem__(self, index: int) -> Dict[str, torch.Tensor]:
        n = len(self.dataset_samples)
        if n == 0:
            raise InputError(f'{type(self).__name__} holds no samples; check the dataset path')
        if self.epoch_len > 0:
            index = random.randrange(n)
        sample = self.augment_sample(self.get_sample(index))
        sample.remove_small_objects(self.min_object_area)
        self.points_sampler.sample_object(sample)
        points = np.asarray(self.points_sampler.sample_points(), dtype=np.float32)
        mask = self.points_sampler.selected_mask.astype(np.float32)
        if sample.ignore is not None:
            mask[sample.ignore] = -1
        image = torch.from_numpy(np.ascontiguousarray(sample.image.transpose(2, 0, 1))).float() / 255.0
        return {'images': image, 'points': torch.from_numpy(points),
                'instances': torch.from_numpy(mask)[None]}


class ComposeDataset(Dataset):
    """Mix several ISDatasets: each item comes from dataset ``i`` with probability ``weights[i]``
    (default: proportional to their sizes). ``epoch_len`` items per epoch."""

    def __init__(self, datasets: Sequence[ISDataset], weights: Optional[Sequence[float]] = None,
                 epoch_len: int = 1000):
        self.datasets = list(datasets)
        sizes = np.array([len(d.dataset_samples) for d in self.datasets], dtype=np.float64)
        w = np.asarray(weights, dtype=np.float64) if weights is not None else sizes
        if w.sum() <= 0:
            raise InputError('ComposeDataset: all datasets are empty; check their paths')
        self.probs = w / w.sum()
        self.epoch_len = epoch_len

    def __len__(self) -> int:
        return self.epoch_len

    def __getitem__(self, index: int) -> Dict[str, torch.Tensor]:
        ds = self.datasets[int(np.random.choice(len(self.datasets), p=self.probs))]
        return ds[random.randrange(len(ds.dataset_samples))]
