"""LVIS v1 (RITM's LvisDataset layout): ``<split>/images/<coco file>.jpg`` and
``<split>/lvis_v1_<split>.json`` (polygon instances). As in RITM, ``train/images`` holds COCO train2017
and ``val/images`` COCO val2017: an image goes by the COCO split in its ``coco_url``, because the LVIS v1
val split takes most of its images from COCO train2017."""
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
        self._root = Path(dataset_path)
        split_path = require_dir(self._root / split, 'LVIS split')
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

    def image_path(self, info) -> Path:
        """``train/images`` for COCO train2017 images, ``val/images`` for val2017 ones (RITM), else (or
        when the file is not there) this split's ``images``."""
        url = info.get('coco_url', '')
        name = info.get('file_name') or url.rsplit('/', 1)[-1]
        folders = [self._images_path]
        for coco_split, folder in (('train2017', 'train'), ('val2017', 'val')):
            if coco_split in url:
                folders.insert(0, self._root / folder / 'images')
        for folder in folders:
            if (folder / name).is_file():
                return folder / name
        return folders[0] / name

    def get_sample(self, index: int) -> DSample:
        info, anns = self.dataset_samples[index]
        path = self.image_path(info)
        image = load_image(path)
        h, w = image.shape[:2]
        # larger objects first (pixel area); an object mostly hidden under those already placed is dropped
        # (as RITM; with this order an object never hides most of an earlier, larger one)
        objects = sorted((self.object_mask(a, h, w) for a in anns), key=lambda m: -int(m.sum()))
        occupied = np.zeros((h, w), bool)
        masks = []
        for m in objects:
            area = m.sum()
            if area == 0 or (m & occupied).sum() / area > self.max_overlap_ratio:
                continue
            occupied |= m
            masks.append(m)
        return DSample(image, stack_masks(masks, h, w), sample_id=path.stem)

    @staticmethod
    def object_mask(annotation, height: int, width: int) -> np.ndarray:
        """Union of the object's polygons (as RITM and pycocotools)."""
        return polygons_to_mask([np.asarray(p) for p in annotation['segmentation']], height, width)
