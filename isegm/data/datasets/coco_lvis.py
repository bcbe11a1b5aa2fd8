"""COCO+LVIS in RITM's packed layout: ``<split>/images/<id>.jpg``, ``<split>/masks/<id>.pickle`` =
``(encoded_layers, objs_mapping)`` (PNG-encoded label layers; object ``i`` is ``layer == mask_id`` with
``(layer, mask_id) = objs_mapping[i]``) and ``<split>/hannotation.pickle`` = ``{id: {'num_instance_masks',
'hierarchy', ...}}``. Objects past ``num_instance_masks`` are stuff, kept with ``stuff_prob``.

The files are pickles (that is how RITM distributes them): only open copies from a trusted source.
"""
from __future__ import annotations

import pickle
import random
from pathlib import Path

import cv2
import numpy as np

from isegm.data.base import DSample, ISDataset
from isegm.data.datasets._common import require_dir
from isegm.utils.image_io import load_image


class CocoLvisDataset(ISDataset):
    def __init__(self, dataset_path, split: str = 'train', stuff_prob: float = 0.0,
                 anno_file: str = 'hannotation.pickle', **kwargs):
        super().__init__(**kwargs)
        split_path = require_dir(Path(dataset_path) / split, 'COCO+LVIS split')
        self._images_path, self._masks_path = split_path / 'images', split_path / 'masks'
        self.stuff_prob = stuff_prob
        with open(split_path / anno_file, 'rb') as f:
            self.dataset_samples = sorted(pickle.load(f).items())

    def get_sample(self, index: int) -> DSample:
        image_id, info = self.dataset_samples[index]
        image = load_image(self._images_path / f'{image_id}.jpg')
        with open(self._masks_path / f'{image_id}.pickle', 'rb') as f:
            encoded_layers, objs_mapping = pickle.load(f)
        layers = [cv2.imdecode(np.frombuffer(x, np.uint8) if isinstance(x, bytes) else x, cv2.IMREAD_UNCHANGED)
                  for x in encoded_layers]
        n_inst = info['num_instance_masks']
        n_total = n_inst + (len(objs_mapping) - n_inst if random.random() < self.stuff_prob else 0)
        masks = [layers[int(objs_mapping[i][0])] == objs_mapping[i][1] for i in range(n_total)]
        h, w = image.shape[:2]
        return DSample(image, np.stack(masks, axis=2) if masks else None, sample_id=str(image_id))
