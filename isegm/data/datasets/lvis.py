"""LVIS v1 (RITM's LvisDataset layout): ``<split>/images/<coco file>.jpg`` and
``<split>/lvis_v1_<split>.json`` (polygon instances)."""
from __future__ import annotations

from collections import defaultdict
import json
from pathlib import Path

import numpy as np

from isegm.data.base import DSample, ISDataset
from isegm.data.datasets._common import polygons_to_mask, require_dir, stack_masks
from isegm.utils.image_io import load_image


class LvisDataset(ISDataset):
    def __init__(self, dataset_path, split: str = 'train', max_overlap_ratio: float = 0.5, **kwargs):
        super().__init__(**kwargs)
        split_path = require_dir(Path(dataset_path) / split, 'LVIS split')
        self._images_path = split_path / 'images'
        self.max_overlap_ratio = max_overlap_ratio
        json_path = split_path / f'lvis_v1_{split}.json'
        if not json_path.is_file():
            json_path = split_path / f'lvis_{split}.json'
        with open(json_path, 'r', encoding='utf-8') as f:
            data = json.load(f)
        anns = defaultdict(list)
        for a in data['annotations']:
            anns[a['image_id']].append(a)
        self.dataset_samples = [(img, anns[img['id']]) for img in data['images'] if anns[img['id']]]

    def get_sample(self, index: int) -> DSample:
        info, anns = self.dataset_samples[index]
        name = info.get('file_name') or info['coco_url'].rsplit('/', 1)[-1]
        image = load_image(self._images_path / name)
        h, w = image.shape[:2]
        # larger objects first; an object mostly hidden under those already placed is dropped (as RITM)
        anns = sorted(anns, key=lambda a: -a.get('area', 0))
        occupied = np.zeros((h, w), bool)
        masks = []
        for a in anns:
            m = polygons_to_mask([np.asarray(p) for p in a['segmentation']], h, w)
            area = m.sum()
            if area == 0 or (m & occupied).sum() / area > self.max_overlap_ratio:
                continue
            occupied |= m
            masks.append(m)
        return DSample(image, stack_masks(masks, h, w), sample_id=Path(name).stem)
