"""ADE20K (2021 release, RITM's ADE20kDataset layout): ``index_ade20k.pkl`` lists ``filename`` and
``folder`` of each image; next to ``<folder>/<name>.jpg`` lies ``<name>.json`` whose
``annotation.object`` entries give ``instance_mask`` PNGs (object pixels non-zero); parts are skipped.
The index is a pickle (as distributed): only open copies from a trusted source."""
from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
from PIL import Image

from isegm.data.base import DSample, ISDataset
from isegm.data.datasets._common import require_dir, stack_masks
from isegm.utils.image_io import load_image


class ADE20kDataset(ISDataset):
    def __init__(self, dataset_path, split: str = 'train', **kwargs):
        super().__init__(**kwargs)
        self.root = require_dir(dataset_path, 'ADE20K')
        with open(self.root / 'index_ade20k.pkl', 'rb') as f:
            index = pickle.load(f)
        key = 'training' if split == 'train' else 'validation'
        self.dataset_samples = [(folder, name) for folder, name in zip(index['folder'], index['filename'])
                                if f'/{key}/' in f'/{folder}/']

    def _resolve(self, folder: str) -> Path:
        folder = Path(folder)
        for k in range(len(folder.parts)):  # index folders start with the dataset's own name
            p = self.root.joinpath(*folder.parts[k:])
            if p.is_dir():
                return p
        return self.root / folder

    def get_sample(self, index: int) -> DSample:
        folder, name = self.dataset_samples[index]
        folder = self._resolve(folder)
        image = load_image(folder / name)
        h, w = image.shape[:2]
        with open(folder / (Path(name).stem + '.json'), 'r', encoding='utf-8', errors='replace') as f:
            objects = json.load(f)['annotation']['object']
        masks = []
        for obj in objects:
            if obj.get('parts', {}).get('part_level', 0) != 0:
                continue
            with Image.open(folder / obj['instance_mask']) as im:
                arr = np.asarray(im)
            m = (arr[:, :, -1] if arr.ndim == 3 else arr) > 0
            if m.shape == (h, w) and m.any():
                masks.append(m)
        return DSample(image, stack_masks(masks, h, w), sample_id=Path(name).stem)
