"""Training readers for custom data: label-image folders, mask stacks, COCO JSON, YOLO segmentation
polygons and BSDS-style region maps. Images and labels pair by file stem."""
from __future__ import annotations

import json
import logging
import random
import re
from collections import defaultdict
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from isegm.data.base import DSample, ISDataset
from isegm.data.datasets._common import (files_by_stem, pair_by_stem, polygons_to_mask, read_label_image,
                                         require_dir, stack_masks)
from isegm.errors import IsegmError
from isegm.utils.image_io import load_image

logger = logging.getLogger(__name__)


class LabelFolderDataset(ISDataset):
    """``images_dir/<stem>.<ext>`` with ``labels_dir/<stem><label_suffix>.png``: one integer per object,
    0 background, ``ignore_label`` (255) not counted. ``binary=True`` reads every non-zero pixel as one
    object (masks saved as 0/255, e.g. COCO_MVal's ``gt/``)."""

    def __init__(self, images_dir, labels_dir, ignore_label: Optional[int] = 255, binary: bool = False,
                 label_suffix: str = '', **kwargs):
        super().__init__(**kwargs)
        self.ignore_label = None if binary else ignore_label
        self.binary = binary
        self.dataset_samples = pair_by_stem(require_dir(images_dir, 'images'), require_dir(labels_dir, 'labels'),
                                            label_suffix=label_suffix)

    def get_sample(self, index: int) -> DSample:
        image_path, label_path = self.dataset_samples[index]
        image = load_image(image_path)
        labels = read_label_image(label_path)
        _check_label_shape(labels, image, label_path, image_path)
        if self.binary:
            labels = (labels > (0 if labels.max() <= 1 else 127)).astype(np.int32)
        return DSample.from_label_map(image, labels, self.ignore_label, sample_id=image_path.stem)


def _check_label_shape(labels: np.ndarray, image: np.ndarray, label_path: Path, image_path: Path) -> None:
    if labels.shape[:2] == image.shape[:2]:
        return
    hint = (' The image file carries an EXIF orientation (applied on load) that the label map does not: '
            'rotate the label map, or save the image without the EXIF tag.'
            if labels.shape[:2] == image.shape[1::-1] else '')
    raise IsegmError(f'label map {label_path.name} is {labels.shape[1]}x{labels.shape[0]} (WxH) but image '
                     f'{image_path.name} is {image.shape[1]}x{image.shape[0]}.{hint}')


class MaskStackDataset(ISDataset):
    """One folder: ``img0.jpg`` with binary masks ``img0_mask0.png``, ``img0_mask1.png``, ... (also in a
    separate ``masks_dir``)."""

    _mask_re = re.compile(r'^(?P<stem>.+)_mask(?P<k>\d+)$')

    def __init__(self, images_dir, masks_dir=None, **kwargs):
        super().__init__(**kwargs)
        images_dir = require_dir(images_dir, 'images')
        masks_dir = require_dir(masks_dir, 'masks') if masks_dir is not None else images_dir
        masks = defaultdict(list)
        for stem, path in files_by_stem(masks_dir, ('.png', '.bmp', '.tif', '.tiff')).items():
            m = self._mask_re.match(stem)
            if m:
                masks[m.group('stem')].append((int(m.group('k')), path))
        images = {s: p for s, p in files_by_stem(images_dir).items() if not self._mask_re.match(s)}
        self.dataset_samples = [(images[s], [p for _, p in sorted(masks[s])]) for s in sorted(images) if s in masks]

    def get_sample(self, index: int) -> DSample:
        from isegm.utils.image_io import load_mask
        image_path, mask_paths = self.dataset_samples[index]
        image = load_image(image_path)
        h, w = image.shape[:2]
        return DSample(image, stack_masks([load_mask(p, (h, w)) for p in mask_paths], h, w),
                       sample_id=image_path.stem)


class CocoJsonDataset(ISDataset):
    """COCO instances JSON (polygons or RLE) with the images in ``images_dir``. ``iscrowd`` regions are
    ignored pixels, as in the COCO protocol."""

    def __init__(self, images_dir, annotation_file, **kwargs):
        super().__init__(**kwargs)
        self.images_dir = require_dir(images_dir, 'images')
        annotation_file = Path(annotation_file)
        if not annotation_file.is_file():
            raise IsegmError(f'COCO annotation file not found: {annotation_file}')
        try:
            with open(annotation_file, 'r', encoding='utf-8') as f:
                data = json.load(f)
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise IsegmError(f'cannot read COCO annotation file {annotation_file}: {e}') from e
        if not isinstance(data, dict):
            raise IsegmError(f'{annotation_file} is not a COCO instances file (expected a JSON object)')
        anns = defaultdict(list)
        annotations = data.get('annotations', [])
        if not (isinstance(annotations, list) and all(isinstance(a, dict) for a in annotations)):
            raise IsegmError(f'{annotation_file}: "annotations" must be a list of objects')
        no_mask = [a.get('id') for a in annotations if not a.get('segmentation')]
        if annotations and len(no_mask) == len(annotations):   # a detection-only file: boxes without masks
            raise IsegmError(f'{annotation_file}: no annotation has a "segmentation"; interactive segmentation '
                             f'needs instance masks')
        if no_mask:   # a mixed file: the box-only annotations are left out
            logger.warning('%s: %d of %d annotations have no segmentation and are skipped (ids %s%s)',
                           annotation_file, len(no_mask), len(annotations), no_mask[:5],
                           ', ...' if len(no_mask) > 5 else '')
        images = data.get('images', [])
        if not isinstance(images, list) or not isinstance(annotations, list):
            raise IsegmError(f'{annotation_file}: "images" and "annotations" must be lists')
        for img in images:
            if not (isinstance(img, dict) and 'id' in img and isinstance(img.get('file_name'), str)):
                raise IsegmError(f'{annotation_file}: an image entry needs "id" and "file_name", got {img!r:.120}')
        for a in annotations:
            if a.get('segmentation'):
                _check_coco_annotation(a, annotation_file)
                anns[a['image_id']].append(a)
        self.dataset_samples = [(img, anns[img['id']]) for img in images if anns[img['id']]]

    @staticmethod
    def decode(segmentation, height: int, width: int) -> np.ndarray:
        """COCO segmentation (polygon list, RLE or uncompressed RLE) -> bool mask."""
        if isinstance(segmentation, list):
            return polygons_to_mask([np.asarray(p, np.float64) for p in segmentation], height, width)
        try:
            from pycocotools import mask as mask_utils
        except ImportError as e:
            raise IsegmError('RLE masks in a COCO JSON need pycocotools: pip install pycocotools') from e
        rle = segmentation
        if isinstance(rle.get('counts'), list):
            rle = mask_utils.frPyObjects(rle, height, width)
        return mask_utils.decode(rle).astype(bool)

    def get_sample(self, index: int) -> DSample:
        info, anns = self.dataset_samples[index]
        image = load_image(self.images_dir / info['file_name'])
        h, w = image.shape[:2]
        masks, ignore = [], np.zeros((h, w), bool)
        for a in anns:
            try:
                m = self.decode(a['segmentation'], h, w)
            except (ValueError, TypeError, KeyError) as exc:
                raise IsegmError(f'annotation {a.get("id", "?")} of {info["file_name"]}: cannot decode its '
                                 f'segmentation ({exc})') from exc
            if m.shape != (h, w):
                raise IsegmError(f'annotation {a.get("id", "?")} of {info["file_name"]}: its RLE is '
                                 f'{m.shape[1]}x{m.shape[0]} but the image is {w}x{h}')
            if a.get('iscrowd', 0):
                ignore |= m
            else:
                masks.append(m)
        return DSample(image, stack_masks(masks, h, w), ignore if ignore.any() else None,
                       sample_id=Path(info['file_name']).stem)


def _check_coco_annotation(a: dict, annotation_file: Path) -> None:
    """Structure of one annotation with a segmentation (polygons or RLE), checked when the file is read."""
    where = f'{annotation_file}: annotation {a.get("id", "?")}'
    if 'image_id' not in a:
        raise IsegmError(f'{where} has no "image_id"')
    seg = a['segmentation']
    if isinstance(seg, list):
        ok = all(isinstance(p, list) and len(p) >= 2 and len(p) % 2 == 0
                 and all(isinstance(v, (int, float)) and not isinstance(v, bool) and np.isfinite(v) for v in p)
                 for p in seg)
        if not ok:
            raise IsegmError(f'{where}: a polygon segmentation is a list of [x1, y1, x2, y2, ...] lists '
                             f'(finite numbers, an even count)')
    elif not (isinstance(seg, dict) and 'counts' in seg and isinstance(seg.get('size'), list)
              and len(seg['size']) == 2 and isinstance(seg['counts'], (str, list))):
        raise IsegmError(f'{where}: the segmentation is neither polygons nor an RLE {{"size": [h, w], "counts": ...}}')


class YoloSegDataset(ISDataset):
    """YOLO segmentation labels: ``labels_dir/<stem>.txt``, one instance a line,
    ``class x1 y1 x2 y2 ...`` normalised to [0, 1]; ``classes`` keeps only those class ids."""

    def __init__(self, images_dir, labels_dir, classes: Optional[Sequence[int]] = None, **kwargs):
        super().__init__(**kwargs)
        self.classes = None if classes is None else set(int(c) for c in classes)
        self.dataset_samples = pair_by_stem(require_dir(images_dir, 'images'), require_dir(labels_dir, 'labels'),
                                            label_exts=('.txt',))

    def get_sample(self, index: int) -> DSample:
        image_path, label_path = self.dataset_samples[index]
        image = load_image(image_path)
        h, w = image.shape[:2]
        masks = []
        for line in label_path.read_text().splitlines():
            vals = line.split()
            if len(vals) < 7:
                continue
            try:
                class_id = int(float(vals[0]))
                coords = np.asarray(vals[1:], np.float64)
            except ValueError:
                raise IsegmError(f'{label_path}: line {line!r} is not "class x1 y1 x2 y2 ..." numbers') from None
            if self.classes is not None and class_id not in self.classes:
                continue
            if not np.isfinite(coords).all():
                raise IsegmError(f'{label_path}: line {line[:60]!r} has non-finite coordinates')
            if coords.min() < -0.01 or coords.max() > 1.01:
                raise IsegmError(f'{label_path}: coordinates range {coords.min():g}..{coords.max():g}, but YOLO '
                                 f'segmentation labels are normalised to [0, 1] (x / width, y / height); '
                                 f'pixel coordinates must be divided by the image size')
            xy = coords[: (len(vals) - 1) // 2 * 2].reshape(-1, 2) * [w, h]
            m = polygons_to_mask([xy], h, w)
            if m.any():
                masks.append(m)
        return DSample(image, stack_masks(masks, h, w), sample_id=image_path.stem)


class BSDSDataset(ISDataset):
    """BSDS-style region maps: ``gt_dir/<stem>_<k>.png`` is annotator ``k``'s label map (uint8/uint16,
    one integer per region, every region an object). Each access picks one annotator at random
    (``annotator`` fixes it)."""

    _gt_re = re.compile(r'^(?P<stem>.+)_(?P<k>\d+)$')

    def __init__(self, images_dir, gt_dir, annotator: Optional[int] = None, **kwargs):
        super().__init__(**kwargs)
        self.annotator = annotator
        gts = defaultdict(list)
        for stem, path in files_by_stem(require_dir(gt_dir, 'ground truth'), ('.png', '.bmp', '.tif', '.tiff')).items():
            m = self._gt_re.match(stem)
            if m:
                gts[m.group('stem')].append((int(m.group('k')), path))
        images = files_by_stem(require_dir(images_dir, 'images'))
        self.dataset_samples = [(images[s], sorted(gts[s])) for s in sorted(images) if s in gts]

    def get_sample(self, index: int) -> DSample:
        image_path, gts = self.dataset_samples[index]
        if self.annotator is not None:
            paths = [p for k, p in gts if k == self.annotator] or [gts[0][1]]
            path = paths[0]
        else:
            path = random.choice(gts)[1]
        image = load_image(image_path)
        labels = read_label_image(path) + 1  # region ids may start at 0: every region is an object
        if labels.shape != image.shape[:2] and labels.shape == image.shape[1::-1]:
            labels = _align_rotated_labels(image, labels)
        return DSample.from_label_map(image, labels, None, sample_id=image_path.stem)


def _align_rotated_labels(image: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Some BSDS label maps are stored turned by 90 degrees: pick the rotation whose region borders
    fall on stronger image edges."""
    import cv2
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32)
    grad = np.hypot(cv2.Sobel(grey, cv2.CV_32F, 1, 0), cv2.Sobel(grey, cv2.CV_32F, 0, 1))
    best, best_score = None, -1.0
    for k in (1, 3):
        rot = np.rot90(labels, k)
        border = np.zeros(rot.shape, bool)
        border[:, 1:] |= rot[:, 1:] != rot[:, :-1]
        border[1:, :] |= rot[1:, :] != rot[:-1, :]
        score = float(grad[border].mean()) if border.any() else 0.0
        if score > best_score:
            best, best_score = np.ascontiguousarray(rot), score
    logger.debug('rotated BSDS label map aligned (edge score %.1f)', best_score)
    return best
