"""OpenImages v6 segmentation (RITM's layout): ``<split>/images/<ImageID>.jpg``, ``<split>/masks/*.png``
and ``<split>/<split>-annotations-object-segmentation.csv`` (columns ``MaskPath``, ``ImageID``).
Masks come at their own resolution and are resized (nearest) to the image."""
from __future__ import annotations

import csv
from collections import defaultdict
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from isegm.data.base import DSample, ISDataset
from isegm.data.datasets._common import require_dir, stack_masks
from isegm.utils.image_io import load_image


class OpenImagesDataset(ISDataset):
    def __init__(self, dataset_path, split: str = 'train', **kwargs):
        super().__init__(**kwargs)
        split_path = require_dir(Path(dataset_path) / split, 'OpenImages split')
        self._images_path, self._masks_path = split_path / 'images', split_path / 'masks'
        by_image = defaultdict(list)
        with open(split_path / f'{split}-annotations-object-segmentation.csv', newline='', encoding='utf-8') as f:
            for row in csv.DictReader(f):
                by_image[row['ImageID']].append(row['MaskPath'])
        self.dataset_samples = sorted(by_image.items())

    def get_sample(self, index: int) -> DSample:
        image_id, mask_files = self.dataset_samples[index]
        image = load_image(self._images_path / f'{image_id}.jpg')
        h, w = image.shape[:2]
        masks = []
        for name in mask_files:
            with Image.open(self._masks_path / name) as im:
                m = np.asarray(im.convert('L')) > 127
            if m.shape != (h, w):
                m = cv2.resize(m.astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST) > 0
            masks.append(m)
        return DSample(image, stack_masks(masks, h, w), sample_id=image_id)
