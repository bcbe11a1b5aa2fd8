"""Readers of the standard NoC benchmarks, in the folder layouts the reference projects use.

Every dataset yields one sample per object instance: ``EvalSample(image uint8 HxWx3, gt_mask int32 HxW
with 1 = object, 0 = background, -1 = ignored, name)``. Ignored pixels are GrabCut's 128 band and VOC's
255 boundary.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
from PIL import Image

from isegm.errors import ImageLoadError, IsegmError
from isegm.utils.image_io import IMAGE_EXTENSIONS, load_image

logger = logging.getLogger(__name__)


@dataclass
class EvalSample:
    image: np.ndarray
    gt_mask: np.ndarray
    name: str


def _read_raw(path: Path) -> np.ndarray:
    try:
        with Image.open(path) as img:
            arr = np.asarray(img)
    except (OSError, ValueError) as e:   # empty, truncated or not an image
        raise ImageLoadError(f'cannot read mask {path}: {e}') from e
    return arr.max(axis=2) if arr.ndim == 3 else arr


def _files_by_stem(folder: Path, exts: Sequence[str] = IMAGE_EXTENSIONS) -> Dict[str, Path]:
    if not folder.is_dir():
        raise IsegmError(f'folder not found: {folder}; the dataset layout is described in the README')
    return {p.stem: p for p in sorted(folder.iterdir()) if p.suffix.lower() in exts}


class EvalDataset:
    """Base: a list of (image path, mask reader) items; ``get_sample(i)`` reads lazily."""

    name = 'dataset'

    def __init__(self, root, max_samples: Optional[int] = None):
        self.root = Path(root)
        if not self.root.is_dir():
            raise IsegmError(f'{self.name} dataset folder not found: {self.root}. Set its path in config.yml.')
        self.items: List[Tuple[Path, Callable[[], np.ndarray], str]] = self._index()
        if not self.items:
            raise IsegmError(f'no samples found in {self.root} (layout expected for {self.name}: see README)')
        if max_samples is not None:
            self.items = self.items[:max_samples]

    def _index(self) -> List[Tuple[Path, Callable[[], np.ndarray], str]]:
        raise NotImplementedError

    def __len__(self) -> int:
        return len(self.items)

    def get_sample(self, index: int) -> EvalSample:
        image_path, read_gt, name = self.items[index]
        image = load_image(image_path)
        gt = read_gt()
        if gt.shape != image.shape[:2]:
            raise IsegmError(f'{self.name}: mask of {name} is {gt.shape}, image is {image.shape[:2]}')
        return EvalSample(image=image, gt_mask=gt, name=name)


def _band_mask(path: Path) -> np.ndarray:
    raw = _read_raw(path).astype(np.int32)
    gt = np.zeros(raw.shape, np.int32)
    gt[raw > 128] = 1
    gt[raw == 128] = -1
    return gt


def _binary_mask(path: Path) -> np.ndarray:
    return (_read_raw(path) > 0).astype(np.int32)


class _PairedFolders(EvalDataset):
    images_dir = 'images'
    masks_dir = 'masks'
    reader = staticmethod(_band_mask)

    def _index(self):
        images = _files_by_stem(self.root / self.images_dir)
        items = []
        for stem, mask_path in _files_by_stem(self.root / self.masks_dir).items():
            image_path = images.get(stem)
            if image_path is None and stem[-1:].isalpha():  # Berkeley: 239007a / 239007b share 239007
                image_path = images.get(stem[:-1])
            if image_path is None:
                logger.warning('%s: no image for mask %s', self.name, mask_path.name)
                continue
            items.append((image_path, (lambda p=mask_path: self.reader(p)), stem))
        return items


class GrabCutDataset(_PairedFolders):
    name, images_dir, masks_dir = 'GrabCut', 'data_GT', 'boundary_GT'


class BerkeleyDataset(_PairedFolders):
    name, images_dir, masks_dir = 'Berkeley', 'images', 'masks'


class DavisDataset(_PairedFolders):
    name, images_dir, masks_dir = 'DAVIS', 'img', 'gt'
    reader = staticmethod(_binary_mask)


class CocoMValDataset(_PairedFolders):
    name, images_dir, masks_dir = 'COCO_MVal', 'img', 'gt'
    reader = staticmethod(_binary_mask)


class PascalVocDataset(EvalDataset):
    """VOC2012 val: one sample per object of ``SegmentationObject`` (255 boundary ignored)."""
    name = 'PascalVOC'

    def __init__(self, root, split: str = 'val', **kw):
        self.split = split
        super().__init__(root, **kw)

    def _index(self):
        ids = (self.root / 'ImageSets' / 'Segmentation' / f'{self.split}.txt').read_text().split()
        items = []
        for image_id in ids:
            mask_path = self.root / 'SegmentationObject' / f'{image_id}.png'
            objects = np.unique(np.asarray(Image.open(mask_path)))
            for obj in objects:
                if obj in (0, 255):
                    continue
                items.append((self.root / 'JPEGImages' / f'{image_id}.jpg',
                              (lambda p=mask_path, o=int(obj): _instance_mask(np.asarray(Image.open(p)), o, 255)),
                              f'{image_id}_{obj}'))
        return items


class SBDDataset(EvalDataset):
    """SBD (``img/*.jpg``, ``inst/*.mat`` with GTinst.Segmentation, ``val.txt``): one sample per instance."""
    name = 'SBD'

    def __init__(self, root, split: str = 'val', **kw):
        self.split = split
        super().__init__(root, **kw)

    def _index(self):
        from scipy.io import loadmat
        ids = (self.root / f'{self.split}.txt').read_text().split()
        items = []
        for image_id in ids:
            mat_path = self.root / 'inst' / f'{image_id}.mat'
            seg = loadmat(str(mat_path))['GTinst'][0][0][0]
            for obj in np.unique(seg):
                if obj == 0:
                    continue
                items.append((self.root / 'img' / f'{image_id}.jpg',
                              (lambda s=seg, o=int(obj): _instance_mask(s, o, None)), f'{image_id}_{obj}'))
        return items


def _instance_mask(labels: np.ndarray, obj: int, ignore: Optional[int]) -> np.ndarray:
    gt = (labels == obj).astype(np.int32)
    if ignore is not None:
        gt[labels == ignore] = -1
    return gt


DATASETS = {'GrabCut': (GrabCutDataset, 'GRABCUT_PATH'), 'Berkeley': (BerkeleyDataset, 'BERKELEY_PATH'),
            'DAVIS': (DavisDataset, 'DAVIS_PATH'), 'COCO_MVal': (CocoMValDataset, 'COCO_MVAL_PATH'),
            'SBD': (SBDDataset, 'SBD_PATH'), 'PascalVOC': (PascalVocDataset, 'PASCALVOC_PATH')}


def get_eval_dataset(name: str, cfg: Dict, max_samples: Optional[int] = None) -> EvalDataset:
    """Dataset by benchmark name, its folder taken from the config (``*_PATH``)."""
    if name not in DATASETS:
        raise IsegmError(f'unknown dataset {name!r}; choose from {", ".join(DATASETS)}')
    cls, key = DATASETS[name]
    return cls(cfg[key], max_samples=max_samples)
