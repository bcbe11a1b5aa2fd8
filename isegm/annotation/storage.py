"""Project files (JSON with RLE masks) and crash-safe writing.

Every file is written to a temporary file in the target folder, flushed and fsync-ed, then renamed
over the target with ``os.replace`` (atomic on POSIX and Windows), so a crash or a killed process at
any moment leaves either the old file or the new one, never a torn one.
"""
from __future__ import annotations

import contextlib
import errno
import io
import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any, Dict, Iterator, Optional, Sequence, Tuple, Union

import numpy as np

from isegm.annotation import mask_memo, rle
from isegm.annotation.box_mask import BoxMask
from isegm.annotation.document import AnnotationDocument, AnnotationObject, ClickRecord, object_color
from isegm.errors import InputError, IsegmError
from isegm.utils.image_io import MAX_IMAGE_PIXELS

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
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=TEMP_PREFIX + path.name + '.', dir=str(path.parent))
    except OSError as exc:
        raise _explained(exc, path) from exc
    try:
        with os.fdopen(fd, mode, **({} if 'b' in mode else {'encoding': 'utf-8'})) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OSError):
            raise _explained(exc, path) from exc
        raise
    _fsync_dir(path.parent)


def _explained(exc: OSError, path: Path) -> OSError:
    """The same kind of OSError, with a message that names the file and folder and says what to do."""
    advice = {errno.ENOSPC: 'the disk is full: free some space', errno.EDQUOT: 'the disk quota is exceeded',
              errno.EACCES: 'the folder is not writable: check its permissions or choose another output folder',
              errno.EPERM: 'the folder is not writable: check its permissions or choose another output folder',
              errno.EROFS: 'the disk is read-only: choose another output folder'}.get(exc.errno, '')
    message = f'cannot write {path.name} in {path.parent}: {exc.strerror or exc}' + (f'; {advice}' if advice else '')
    return type(exc)(exc.errno, message) if exc.errno is not None else OSError(message)


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
def encoded_mask(region: BoxMask) -> Dict[str, Any]:
    """The compressed COCO RLE of a finished object's mask (encoded once per region; a fresh dict)."""
    encoded = mask_memo.fact(region, 'rle', lambda r: rle.encode_box(r.crop, r.y0, r.x0, r.shape))
    return {'size': list(encoded['size']), 'counts': encoded['counts']}


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
            'mask': encoded_mask(obj.region),
            'clicks': [[c.y, c.x, bool(c.is_positive)] for c in obj.clicks],
            'extreme_points': [list(p) for p in obj.extreme_points],
        })
    return {'format': PROJECT_FORMAT, 'version': PROJECT_VERSION,
            'image': {'file_name': doc.image_name, 'height': h, 'width': w},
            'next_id': doc.next_id, 'objects': objects}


def document_from_dict(data: Dict[str, Any], image_shape: Optional[Sequence[int]] = None,
                       image_name: Optional[str] = None) -> AnnotationDocument:
    """Rebuild a document from :func:`document_to_dict` output; checks it fits ``image_shape``.

    Damage that leaves the masks intact is repaired with a warning instead of refusing the work: an
    invalid colour gets the object's default colour, a missing label becomes 'object', clicks and extreme
    points outside the image are dropped, and objects with an empty mask (nothing to export) are skipped.
    """
    try:
        if data.get('format') != PROJECT_FORMAT:
            raise ProjectFileError(f'not an isegm project file (format={data.get("format")!r})')
        if int(data.get('version', 0)) > PROJECT_VERSION:
            raise ProjectFileError(f'project file version {data["version"]} is newer than this isegm '
                                   f'(reads up to {PROJECT_VERSION}); update isegm')
        shape = (int(data['image']['height']), int(data['image']['width']))
        if min(shape) < 1 or shape[0] * shape[1] > MAX_IMAGE_PIXELS:
            raise ProjectFileError(f'the project file declares a {shape[0]}x{shape[1]} image, which no image '
                                   f'can be (the file was edited or damaged)')
        if image_shape is not None and tuple(int(s) for s in image_shape[:2]) != shape:
            raise ProjectFileError(f'the project file is for a {shape[0]}x{shape[1]} image but the image is '
                                   f'{image_shape[0]}x{image_shape[1]}; move the stale project file away')
        doc = AnnotationDocument(shape, image_name=image_name if image_name is not None
                                 else data['image'].get('file_name', ''))
        objects = [obj for obj in (_object_from_dict(o, shape) for o in data['objects']) if obj is not None]
        ids = [o.id for o in objects]
        if len(set(ids)) != len(ids):
            raise ProjectFileError(f'object ids repeat ({sorted(i for i in set(ids) if ids.count(i) > 1)}): '
                                   'the file was edited or merged by hand')
        doc.restore_objects(objects, next_id=int(data.get('next_id', 1)))
        return doc
    except ProjectFileError:
        raise
    except (KeyError, IndexError, TypeError, ValueError, AttributeError, InputError, MemoryError) as exc:
        raise ProjectFileError(f'damaged project file: {type(exc).__name__}: {exc}') from exc


def _object_from_dict(o: Dict[str, Any], shape: Tuple[int, int]) -> Optional[AnnotationObject]:
    oid = int(o['id'])
    size = o['mask'].get('size') if isinstance(o['mask'], dict) else None
    if size is None or [int(v) for v in size] != list(shape):
        raise ProjectFileError(f'object {oid} mask is {size}, expected {list(shape)}')
    mask = rle.decode(o['mask'])
    if not mask.any():
        logger.warning('project file: object %d has an empty mask; skipped', oid)
        return None
    color = o.get('color')
    if not (isinstance(color, (list, tuple)) and len(color) == 3
            and all(isinstance(c, int) and not isinstance(c, bool) and 0 <= c <= 255 for c in color)):
        if color is not None:
            logger.warning('project file: object %d has an invalid colour %r; using its default colour', oid, color)
        color = object_color(oid)
    label = o.get('label')
    label = str(label).strip() if label is not None and str(label).strip() else 'object'
    clicks = [ClickRecord(int(c[0]), int(c[1]), bool(c[2])) for c in o.get('clicks', [])]
    points = [(int(p[0]), int(p[1])) for p in o.get('extreme_points', [])]
    inside = [c for c in clicks if 0 <= c.y < shape[0] and 0 <= c.x < shape[1]]
    if len(inside) != len(clicks) or not all(0 <= y < shape[0] and 0 <= x < shape[1] for y, x in points):
        logger.warning('project file: object %d has clicks or extreme points outside the image; dropped', oid)
        points = [(y, x) for y, x in points if 0 <= y < shape[0] and 0 <= x < shape[1]]
    return AnnotationObject(id=oid, region=BoxMask.from_mask(mask), label=label, color=tuple(color), clicks=tuple(inside),
                            extreme_points=tuple(points))


def read_project_data(path: PathLike) -> Optional[Dict[str, Any]]:
    """The raw dict of an isegm project file, or None when the file is missing, unreadable or not a project
    file (for quick looks such as its image name or object count; :func:`load_project` validates)."""
    try:
        data = json.loads(Path(path).read_text(encoding='utf-8'))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError):
        return None
    return data if isinstance(data, dict) and data.get('format') == PROJECT_FORMAT else None


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
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise ProjectFileError(f'cannot read project file {path}: {type(exc).__name__}: {exc}; restore it from '
                               'a backup or move it away to start over') from exc
    if not isinstance(data, dict):
        raise ProjectFileError(f'{path} is not an isegm project file')
    return document_from_dict(data, image_shape=image_shape, image_name=image_name)


def mask_png_bytes(array: np.ndarray, compress_level: int = 6) -> bytes:
    """Encode a uint8/uint16 H x W or RGB array as PNG bytes (Pillow; zlib level ``compress_level``)."""
    from PIL import Image
    arr = np.ascontiguousarray(array)
    if arr.dtype == np.uint16 and arr.ndim != 2:
        raise InputError('uint16 PNGs must be single channel')
    img = Image.fromarray(arr if arr.dtype == np.uint16 else arr.astype(np.uint8))
    buf = io.BytesIO()
    img.save(buf, format='PNG', compress_level=compress_level)
    return buf.getvalue()
