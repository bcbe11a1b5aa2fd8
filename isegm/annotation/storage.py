"""Project files (JSON with RLE masks) and crash-safe writing.

Every file is written to a temporary file in the target folder, flushed and fsync-ed, then renamed
over the target with ``os.replace`` (atomic on POSIX and Windows), so a crash or a killed process at
any moment leaves either the old file or the new one, never a torn one.
"""
from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any, Dict, Iterator, Optional, Sequence, Union

import numpy as np

from isegm.annotation import rle
from isegm.annotation.document import AnnotationDocument, AnnotationObject, ClickRecord, object_color
from isegm.errors import InputError, IsegmError

logger = logging.getLogger(__name__)

PathLike = Union[str, os.PathLike]
PROJECT_FORMAT = 'isegm-annotation'
PROJECT_VERSION = 1
TEMP_PREFIX = '.isegm-tmp-'


class ProjectFileError(IsegmError):
    """A project file cannot be read (damaged, foreign, or for another image)."""


@contextlib.contextmanager
def atomic_writer(path: PathLike, mode: str = 'wb') -> Iterator[io.IOBase]:
    """Context manager yielding a file object whose content replaces ``path`` only on success.

    On an exception the temporary file is removed and ``path`` is left untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=TEMP_PREFIX + path.name + '.', dir=str(path.parent))
    try:
        with os.fdopen(fd, mode, **({} if 'b' in mode else {'encoding': 'utf-8'})) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)


def _fsync_dir(folder: Path) -> None:
    if os.name != 'posix':
        return
    with contextlib.suppress(OSError):
        fd = os.open(str(folder), os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def atomic_write_bytes(path: PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temp file + fsync + rename)."""
    with atomic_writer(path, 'wb') as fh:
        fh.write(data)


def atomic_write_json(path: PathLike, obj: Any) -> None:
    """Write ``obj`` as JSON to ``path`` atomically."""
    atomic_write_bytes(path, json.dumps(obj, indent=1, ensure_ascii=False).encode('utf-8'))


def remove_stale_temp_files(folder: PathLike) -> int:
    """Delete temporary files left by writers that were killed; returns how many were removed."""
    folder = Path(folder)
    removed = 0
    if folder.is_dir():
        for p in folder.glob(TEMP_PREFIX + '*'):
            with contextlib.suppress(OSError):
                p.unlink()
                removed += 1
    return removed


# ---------------------------------------------------------------------- project <-> dict
def document_to_dict(doc: AnnotationDocument) -> Dict[str, Any]:
    """The finished objects of a document as a JSON-ready dict (masks as compressed COCO RLE)."""
    h, w = doc.image_shape
    objects = []
    for obj in doc.objects:
        objects.append({
            'id': obj.id,
            'label': obj.label,
            'color': list(obj.color),
            'area': obj.area,
            'bbox': list(obj.bbox),
            'mask': rle.encode(obj.mask),
            'clicks': [[c.y, c.x, bool(c.is_positive)] for c in obj.clicks],
            'extreme_points': [list(p) for p in obj.extreme_points],
        })
    return {'format': PROJECT_FORMAT, 'version': PROJECT_VERSION,
            'image': {'file_name': doc.image_name, 'height': h, 'width': w},
            'next_id': doc.next_id, 'objects': objects}


def document_from_dict(data: Dict[str, Any], image_shape: Optional[Sequence[int]] = None,
                       image_name: Optional[str] = None) -> AnnotationDocument:
    """Rebuild a document from :func:`document_to_dict` output; checks it fits ``image_shape``."""
    try:
        if data.get('format') != PROJECT_FORMAT:
            raise ProjectFileError(f'not an isegm project file (format={data.get("format")!r})')
        if int(data.get('version', 0)) > PROJECT_VERSION:
            raise ProjectFileError(f'project file version {data["version"]} is newer than this isegm '
                                   f'(reads up to {PROJECT_VERSION}); update isegm')
        shape = (int(data['image']['height']), int(data['image']['width']))
        if image_shape is not None and tuple(int(s) for s in image_shape[:2]) != shape:
            raise ProjectFileError(f'the project file is for a {shape[0]}x{shape[1]} image but the image is '
                                   f'{image_shape[0]}x{image_shape[1]}; move the stale project file away')
        doc = AnnotationDocument(shape, image_name=image_name if image_name is not None
                                 else data['image'].get('file_name', ''))
        objects = []
        for o in data['objects']:
            mask = rle.decode(o['mask'])
            if mask.shape != shape:
                raise ProjectFileError(f'object {o["id"]} mask is {mask.shape}, expected {shape}')
            oid = int(o['id'])
            objects.append(AnnotationObject(
                id=oid, mask=mask, label=str(o.get('label', 'object')),
                color=tuple(int(c) for c in o.get('color', object_color(oid))),
                clicks=tuple(ClickRecord(int(c[0]), int(c[1]), bool(c[2])) for c in o.get('clicks', [])),
                extreme_points=tuple((int(p[0]), int(p[1])) for p in o.get('extreme_points', []))))
        ids = [o.id for o in objects]
        if len(set(ids)) != len(ids):
            raise ProjectFileError(f'object ids repeat ({sorted(i for i in set(ids) if ids.count(i) > 1)}): '
                                   'the file was edited or merged by hand')
        doc.restore_objects(objects, next_id=int(data.get('next_id', 1)))
        return doc
    except ProjectFileError:
        raise
    except (KeyError, IndexError, TypeError, ValueError, InputError) as exc:
        raise ProjectFileError(f'damaged project file: {exc}') from exc


def save_project(doc: AnnotationDocument, path: PathLike) -> None:
    """Write the document's project file atomically and mark the document saved."""
    atomic_write_json(path, document_to_dict(doc))
    doc.mark_saved()
    logger.info('saved %d objects to %s', len(doc.objects), path)


def load_project(path: PathLike, image_shape: Optional[Sequence[int]] = None,
                 image_name: Optional[str] = None) -> AnnotationDocument:
    """Read a project file written by :func:`save_project`; raises :class:`ProjectFileError`."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding='utf-8'))
    except FileNotFoundError as exc:
        raise ProjectFileError(f'project file {path} does not exist') from exc
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ProjectFileError(f'cannot read project file {path}: {exc}; restore it from a backup or '
                               'move it away to start over') from exc
    if not isinstance(data, dict):
        raise ProjectFileError(f'{path} is not an isegm project file')
    return document_from_dict(data, image_shape=image_shape, image_name=image_name)


def mask_png_bytes(array: np.ndarray) -> bytes:
    """Encode a uint8/uint16 H x W or RGB array as PNG bytes (Pillow)."""
    from PIL import Image
    arr = np.ascontiguousarray(array)
    if arr.dtype == np.uint16 and arr.ndim != 2:
        raise InputError('uint16 PNGs must be single channel')
    img = Image.fromarray(arr if arr.dtype == np.uint16 else arr.astype(np.uint8))
    buf = io.BytesIO()
    img.save(buf, format='PNG')
    return buf.getvalue()
