"""SBD (Semantic Boundaries Dataset) in RITM's layout: ``img/<id>.jpg``, ``inst/<id>.mat``
(``GTinst.Segmentation``: instance ids, 0 background), ``train.txt`` / ``val.txt``."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from isegm.data.base import DSample, ISDataset
from isegm.data.datasets._common import require_dir
from isegm.utils.image_io import load_image


def read_sbd_instances(path: Path) -> np.ndarray:
    from scipy.io import loadmat
    return loadmat(str(path))['GTinst'][0][0][0].astype(np.int32)


class SBDDataset(ISDataset):
    def __init__(self, dataset_path, split: str = 'train', **kwargs):
        super().__init__(**kwargs)
        root = require_dir(dataset_path, 'SBD')
        self._images_path, self._insts_path = root / 'img', root / 'inst'
        self.dataset_samples = [x.strip() for x in (root / f'{split}.txt').read_text().split() if x.strip()]

    def get_sample(self, index: int) -> DSample:
        name = self.dataset_samples[index]
        image = load_image(self._images_path / f'{name}.jpg')
        labels = read_sbd_instances(self._insts_path / f'{name}.mat')
        return DSample.from_label_map(image, labels, ignore_label=255, sample_id=name)
