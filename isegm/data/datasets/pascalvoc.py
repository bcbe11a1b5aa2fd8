"""PASCAL VOC 2012 instance masks: ``JPEGImages/<id>.jpg``, ``SegmentationObject/<id>.png`` (palette
index per object, 255 boundary = ignored), ``ImageSets/Segmentation/<split>.txt``."""
from __future__ import annotations

from isegm.data.base import DSample, ISDataset
from isegm.data.datasets._common import read_label_image, require_dir
from isegm.utils.image_io import load_image


class PascalVocDataset(ISDataset):
    def __init__(self, dataset_path, split: str = 'train', **kwargs):
        super().__init__(**kwargs)
        root = require_dir(dataset_path, 'PASCAL VOC')
        self._images_path, self._insts_path = root / 'JPEGImages', root / 'SegmentationObject'
        split_file = root / 'ImageSets' / 'Segmentation' / f'{split}.txt'
        self.dataset_samples = [x.strip() for x in split_file.read_text().split() if x.strip()]

    def get_sample(self, index: int) -> DSample:
        name = self.dataset_samples[index]
        image = load_image(self._images_path / f'{name}.jpg')
        labels = read_label_image(self._insts_path / f'{name}.png')
        return DSample.from_label_map(image, labels, ignore_label=255, sample_id=name)
