"""Exports of an annotated image: project file, instance PNG, per-object PNGs, preview, COCO JSON.

Layout in the output folder (default ``<image folder>/annotations/``)::

    <stem>.json            project file (reopened on load so work resumes)
    <stem>_instances.png   0 background, k = k-th object (uint16 when more than 255 objects)
    <stem>_<k>.png         one binary PNG per object (0/255)
    <stem>_preview.png     colour overlay
    coco.json              COCO instances (RLE + polygons) for every saved image of the folder
"""
from __future__ import annotations

import contextlib
import json
import logging
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple, Union

import cv2
import numpy as np

from isegm.annotation import mask_memo
from isegm.annotation.box_mask import BoxMask
from isegm.annotation.document import AnnotationDocument
from isegm.annotation.render import render_preview
from isegm.annotation.storage import (PROJECT_FORMAT, PathLike, ProjectFileError, atomic_write_bytes,
                                      atomic_write_json, document_from_dict, document_to_dict, encoded_mask,
                                      load_project, mask_png_bytes, read_project_data)
from isegm.errors import InputError
from isegm.utils.image_io import to_rgb_uint8

logger = logging.getLogger(__name__)

COCO_FILE = 'coco.json'


def output_paths(out_dir: PathLike, stem: str) -> Dict[str, Path]:
    """Paths of the files written for one image."""
    out_dir = Path(out_dir)
    return {'project': out_dir / f'{stem}.json', 'instances': out_dir / f'{stem}_instances.png',
            'preview': out_dir / f'{stem}_preview.png', 'coco': out_dir / COCO_FILE}


def object_png_path(out_dir: PathLike, stem: str, k: int) -> Path:
    return Path(out_dir) / f'{stem}_{k}.png'


def mask_to_polygons(mask: Union[np.ndarray, BoxMask], min_points: int = 3) -> List[List[float]]:
    """Outer contours of a binary mask (H x W array or :class:`BoxMask`) as COCO polygons
    ``[[x0, y0, x1, y1, ...], ...]`` in image pixels.

    Polygons cannot express holes; the RLE is the exact form.
    """
    if isinstance(mask, BoxMask):      # the box with a zero border, traced with the box's offset
        m = np.pad(mask.crop.astype(np.uint8), 1)
        offset = (mask.x0 - 1, mask.y0 - 1)
    else:
        m = np.ascontiguousarray(mask.astype(np.uint8))
        offset = (0, 0)
    contours, _ = cv2.findContours(m, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE, offset=offset)
    polys = []
    for c in contours:
        c = c.reshape(-1, 2)
        if len(c) < min_points:
            # tiny blob: use its pixel box so the polygon stays valid
            x0, y0 = c.min(axis=0)
            x1, y1 = c.max(axis=0)
            c = np.array([[x0, y0], [x1 + 1, y0], [x1 + 1, y1 + 1], [x0, y1 + 1]])
        polys.append([float(v) for v in c.reshape(-1)])
    return polys


def export_image(doc: AnnotationDocument, image: np.ndarray, out_dir: PathLike, stem: str,
                 update_coco: bool = True, preview_alpha: float = 0.5) -> Dict[str, Path]:
    """Write all files of one image (every one atomically) and mark the document saved.

    The document is marked saved only when every file was written: after a failure (read-only
    folder, full disk) it still reports unsaved work, and each file is either the old or the new one.
    Per-object PNGs of objects that no longer exist (``<stem>_<k>.png`` written by the previous export,
    as its project file records, with k > number of objects) are removed so the folder matches the
    project file; no other file is ever removed. Returns the written paths.
    """
    out_dir = Path(out_dir)
    paths = output_paths(out_dir, stem)
    if paths['project'].name.lower() == COCO_FILE.lower():
        raise InputError(f'the output name {stem!r} is taken by the COCO file {COCO_FILE}; '
                         f'export this image under another name (e.g. its file name)')
    image = to_rgb_uint8(image)   # grey / RGBA / 16-bit arrays: the preview is drawn on RGB uint8
    if image.shape[:2] != doc.image_shape:
        raise InputError(f'image is {image.shape[:2]} but the document is for {doc.image_shape}')
    written_before = _object_count(paths['project'])
    data = document_to_dict(doc)
    atomic_write_json(paths['project'], data)
    _remember_coco_entry(paths['project'], _coco_entry_of(doc, data, paths['project']))
    atomic_write_bytes(paths['instances'], mask_png_bytes(doc.instance_map()))
    for k, obj in enumerate(doc.objects, start=1):
        _write_object_png(object_png_path(out_dir, stem, k), obj.region)
    for k in range(len(doc.objects) + 1, written_before + 1):   # only files this function wrote before
        with contextlib.suppress(FileNotFoundError):
            object_png_path(out_dir, stem, k).unlink()
    # the preview is a photo: zlib level 1 writes it ~5x faster than level 6 for ~20 % more bytes
    atomic_write_bytes(paths['preview'], mask_png_bytes(render_preview(image, doc.objects, preview_alpha),
                                                        compress_level=1))
    if update_coco:
        write_coco(out_dir)
    doc.mark_saved()
    logger.info('exported %d objects of %s to %s', len(doc.objects), stem, out_dir)
    return paths


def _file_key(path: Path) -> Optional[Tuple[int, int, int]]:
    """Identity of a file's current version (files are replaced atomically: a new version is a new inode)."""
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_ino, st.st_size, st.st_mtime_ns


def _write_object_png(path: Path, region: BoxMask) -> None:
    """Write an object's full-size 0/255 PNG, unless this very region was written to this path and the file
    is still the version written then (unchanged objects are not encoded again on every save)."""
    written = mask_memo.get(region, 'png_files', {})
    if str(path) in written and written[str(path)] == _file_key(path):
        return
    atomic_write_bytes(path, mask_png_bytes(region.to_array().view(np.uint8) * np.uint8(255)))
    key = _file_key(path)
    if key is not None:
        mask_memo.put(region, 'png_files', {**written, str(path): key})


def _object_count(project: Path) -> int:
    """Number of objects (so of per-object PNGs) in an existing project file; 0 if absent or unreadable."""
    objects = (read_project_data(project) or {}).get('objects')
    return len(objects) if isinstance(objects, list) else 0


# Per project file: its COCO image entry and annotations (without ids), keyed by the file's identity
# (inode, size, mtime; project files are replaced atomically, so a new version is a new inode). Saving
# one image then re-encodes only that image instead of every project file of the folder.
_COCO_CACHE: Dict[str, Tuple[Tuple[int, int, int], Optional[Dict[str, Any]]]] = {}
_COCO_CACHE_MAX = 50000


def _coco_entry(path: Path) -> Optional[Dict[str, Any]]:
    """``{'image': {file_name, height, width}, 'objects': [(label, annotation without ids)]}`` of one
    project file; None for other JSON files and for unreadable or damaged project files (logged)."""
    key = _file_key(path)
    if key is None:
        logger.warning('skipping unreadable project file %s', path)
        return None
    cached = _COCO_CACHE.get(str(path))
    if cached is not None and cached[0] == key:
        return cached[1]
    entry = _read_coco_entry(path)
    _cache_coco_entry(path, key, entry)
    return entry


def _cache_coco_entry(path: Path, key: Tuple[int, int, int], entry: Optional[Dict[str, Any]]) -> None:
    if len(_COCO_CACHE) >= _COCO_CACHE_MAX:
        _COCO_CACHE.clear()
    _COCO_CACHE[str(path)] = (key, entry)


def _remember_coco_entry(path: Path, entry: Dict[str, Any]) -> None:
    """Record the COCO entry of a project file just written (no need to read it back and re-encode)."""
    key = _file_key(path)
    if key is not None:
        _cache_coco_entry(path, key, entry)


def _read_coco_entry(path: Path) -> Optional[Dict[str, Any]]:
    try:
        data = json.loads(path.read_text(encoding='utf-8'))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        logger.warning('skipping unreadable project file %s: %s', path, exc)
        return None
    if not (isinstance(data, dict) and data.get('format') == PROJECT_FORMAT):
        return None
    try:
        doc = document_from_dict(data)   # a damaged file must not stop the export of the others
    except ProjectFileError as exc:
        logger.warning('skipping damaged project file %s: %s', path, exc)
        return None
    return _coco_entry_of(doc, data, path)


def _coco_entry_of(doc: AnnotationDocument, data: Dict[str, Any], path: Path) -> Dict[str, Any]:
    """The COCO entry of a document whose project file at ``path`` holds ``data``."""
    height, width = doc.image_shape
    objects = []
    for o in doc.objects:
        area = o.area
        if area:
            objects.append((o.label, {'segmentation': encoded_mask(o.region),
                                      'polygons': mask_memo.fact(o.region, 'polygons', mask_to_polygons),
                                      'area': area, 'bbox': list(o.bbox), 'iscrowd': 0}))
    image = {'file_name': data['image'].get('file_name') or path.stem, 'height': int(height), 'width': int(width)}
    return {'image': image, 'objects': objects}


def build_coco(out_dir: PathLike) -> Dict[str, Any]:
    """COCO instances dict for every project file in ``out_dir`` (images sorted by file name).

    Each annotation's ``segmentation`` is the exact compressed RLE; ``polygons`` holds the outer
    contours for tools that want polygons. Category ids follow the sorted class labels. Project files
    unchanged since the last call are not decoded again.
    """
    out_dir = Path(out_dir)
    entries = [e for e in (_coco_entry(p) for p in sorted(out_dir.glob('*.json')) if p.name != COCO_FILE)
               if e is not None]
    labels = sorted({label for e in entries for label, _ in e['objects']})
    categories = [{'id': i, 'name': name, 'supercategory': 'object'} for i, name in enumerate(labels, start=1)]
    cat_ids = {c['name']: c['id'] for c in categories}
    images, annotations = [], []
    for image_id, e in enumerate(entries, start=1):
        images.append({'id': image_id, **e['image']})
        for label, ann in e['objects']:   # fresh containers: the result may be edited, the cache must not be
            seg = ann['segmentation']
            annotations.append({'id': len(annotations) + 1, 'image_id': image_id, 'category_id': cat_ids[label],
                                'segmentation': {'size': list(seg['size']), 'counts': seg['counts']},
                                'polygons': [list(poly) for poly in ann['polygons']], 'area': ann['area'],
                                'bbox': list(ann['bbox']), 'iscrowd': 0})
    return {'info': {'description': 'isegm annotations',
                     'date_created': datetime.now(timezone.utc).isoformat(timespec='seconds')},
            'licenses': [], 'images': images, 'annotations': annotations, 'categories': categories}


def write_coco(out_dir: PathLike) -> Path:
    """(Re)write ``coco.json`` in ``out_dir`` from all project files there, atomically."""
    path = Path(out_dir) / COCO_FILE
    atomic_write_json(path, build_coco(out_dir))
    return path


def load_document_for_image(out_dir: PathLike, stem: str, image_shape, image_name: str
                            ) -> Optional[AnnotationDocument]:
    """The saved document of an image, or None when it has no project file yet."""
    path = output_paths(out_dir, stem)['project']
    if not path.exists():
        return None
    return load_project(path, image_shape=image_shape, image_name=image_name)


__all__ = ['export_image', 'build_coco', 'write_coco', 'mask_to_polygons', 'output_paths', 'object_png_path',
           'load_document_for_image', 'ProjectFileError', 'document_to_dict', 'COCO_FILE']
