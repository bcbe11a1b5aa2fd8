"""COCO panoptic layout (RITM's CocoDataset): ``<split>/<file>.jpg`` images,
``annotations/panoptic_<split>.json`` and ``annotations/panoptic_<split>/<file>.png`` where a segment id is
``R + 256 G + 256^2 B``. Every segment (thing or stuff) is an object; ``stuff_prob`` keeps stuff."""
from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
from PIL import Image

from isegm.data.base import DSample, ISDataset
from isegm.data.datasets._common import require_dir, stack_masks
from isegm.utils.image_io import load_image


class CocoDataset(ISDataset):
    def __init__(self, dataset_path, split: str = 'train', stuff_prob: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        root = require_dir(dataset_path, 'COCO')
        self.stuff_prob = stuff_prob
        self._images_path = root / f'{split}2017' if (root / f'{split}2017').is_dir() else root / split
        self._masks_path = root / 'annotations' / f'panoptic_{split}'
        with open(root / 'annotations' / f'panoptic_{split}.json', 'r', encoding='utf-8') as f:
            data = json.load(f)
        self._isthing = {c['id']: c.get('isthing', 1) for c in data.get('categories', [])}
        self.dataset_samples = data['annotations']

    def get_sample(self, index: int) -> DSample:
        ann = self.dataset_samples[index]
        image = load_image(self._images_path / ann['file_name'].replace('.png', '.jpg'))
        png = np.asarray(Image.open(self._masks_path / ann['file_name']).convert('RGB')).astype(np.int64)
        ids = png[:, :, 0] + 256 * png[:, :, 1] + 256 * 256 * png[:, :, 2]
        with_stuff = random.random() < self.stuff_prob
        masks, ignore = [], np.zeros(ids.shape, bool)
        for seg in ann['segments_info']:
            m = ids == seg['id']
            if seg.get('iscrowd', 0):
                ignore |= m
            elif self._isthing.get(seg['category_id'], 1) or with_stuff:
                masks.append(m)
        h, w = ids.shape
        return DSample(image, stack_masks(masks, h, w), ignore if ignore.any() else None,
                       sample_id=Path(ann['file_name']).stem)
