"""Helpers shared by the training readers: raw label reading, pairing files by stem."""
from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from PIL import Image

from isegm.errors import ImageLoadError, IsegmError
from isegm.utils.image_io import IMAGE_EXTENSIONS


def read_label_image(path: Path) -> np.ndarray:
    """Integer label image as stored (palette indices, 8/16-bit grey; colour -> first channel)."""
    try:
        with Image.open(path) as img:
            arr = np.asarray(img)
    except (OSError, ValueError) as e:
        raise ImageLoadError(f'cannot read label image {path}: {e}')
    if arr.ndim == 3:
        arr = arr[:, :, 0]
    return arr.astype(np.int32)


def files_by_stem(folder: Path, exts: Sequence[str] = IMAGE_EXTENSIONS) -> Dict[str, Path]:
    return {p.stem: p for p in sorted(Path(folder).iterdir()) if p.is_file() and p.suffix.lower() in exts}


def require_dir(path, what: str) -> Path:
    path = Path(path)
    if not path.is_dir():
        raise IsegmError(f'{what} folder not found: {path}. Set its path in config.yml or on the command line.')
    return path


def pair_by_stem(images_dir: Path, labels_dir: Path, label_exts: Sequence[str] = ('.png', '.bmp', '.tif', '.tiff'),
                 label_suffix: str = '') -> List[Tuple[Path, Path]]:
    """(image, label) pairs whose stems match (``label stem = image stem + label_suffix``)."""
    images = files_by_stem(images_dir)
    labels = files_by_stem(labels_dir, label_exts)
    return [(images[s], labels[s + label_suffix]) for s in sorted(images) if s + label_suffix in labels]


def polygons_to_mask(polygons: List[np.ndarray], height: int, width: int) -> np.ndarray:
    """Fill polygons (each ``K x 2`` float ``(x, y)`` pixel coordinates) into a bool mask: their union, as
    pycocotools merges the polygons of a COCO segmentation (one ``fillPoly`` call over all of them would
    apply the even-odd rule and cut out the places where two polygons overlap)."""
    import cv2
    mask = np.zeros((height, width), np.uint8)
    for p in polygons:
        if np.asarray(p).size >= 6:
            cv2.fillPoly(mask, [np.round(np.asarray(p, np.float64).reshape(-1, 2)).astype(np.int32)], 1)
    return mask.astype(bool)


def stack_masks(masks: List[np.ndarray], height: int, width: int) -> Optional[np.ndarray]:
    return np.stack(masks, axis=2).astype(np.uint8) if masks else np.zeros((height, width, 0), np.uint8)
