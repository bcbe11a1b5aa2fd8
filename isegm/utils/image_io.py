"""The one place where image and mask files become arrays (DESIGN 3: RGB uint8 H x W x 3 everywhere).

Grey, palette, RGBA/LA (the alpha channel is dropped), CMYK, 16-bit and float images are converted
here (16-bit data scaled by the bit depth its values use: 12-bit data to 4095), and EXIF orientation is
applied, so every consumer sees the picture as a viewer shows it.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Optional, Tuple, Union

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from isegm.errors import ImageLoadError, InputError

PathLike = Union[str, os.PathLike]
IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff', '.webp', '.ppm', '.pgm', '.gif')
# Large scans are legitimate input (6000 x 4000 and more); refuse only absurd sizes.
MAX_IMAGE_PIXELS = 400_000_000
Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS


def _scale_to_uint8(arr: np.ndarray) -> np.ndarray:
    """8-bit values of an image array. Values in a standard range keep their meaning ([0, 1] floats, 0..255,
    9..16-bit data scaled by its bit depth); anything else (negative values, floats beyond 255, integers
    beyond 16 bits: scientific data) is stretched linearly from its minimum to its maximum, as image
    viewers show such files."""
    if arr.dtype == np.uint8:
        return arr
    if arr.dtype == bool:
        return arr.astype(np.uint8) * 255
    if np.issubdtype(arr.dtype, np.floating):
        finite = np.nan_to_num(arr.astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0)
        low, top = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 0.0)
        if low >= 0.0 and top <= 1.0:
            return np.round(finite * 255).astype(np.uint8)
        if low >= 0.0 and top <= 255.0:
            return np.round(finite).astype(np.uint8)
        return _stretch(finite, low, top)
    if np.issubdtype(arr.dtype, np.integer):
        low, top = (int(arr.min()), int(arr.max())) if arr.size else (0, 0)
        if low < 0 or top > 65535:
            return _stretch(arr.astype(np.float64), low, top)
        if top > 255:
            # Scaled by the bit depth the values use (9..16 bits, e.g. 12-bit sensor data to 4095), so that
            # brightness does not jump from 8-bit-like to nearly black when one pixel passes 255.
            bits = max(top.bit_length(), 9)
            return np.round(arr.astype(np.float64) * (255.0 / (2 ** bits - 1))).clip(0, 255).astype(np.uint8)
        return arr.astype(np.uint8)
    raise InputError(f'unsupported image dtype {arr.dtype}; expected uint8, uint16 or float')


def _stretch(values: np.ndarray, low: float, top: float) -> np.ndarray:
    if top <= low:
        return np.zeros(values.shape, np.uint8)
    return np.round((values - low) * (255.0 / (top - low))).clip(0, 255).astype(np.uint8)


def to_rgb_uint8(image: np.ndarray) -> np.ndarray:
    """Any image array (H x W, H x W x 1/2/3/4; uint8/uint16/float/bool) -> RGB uint8 H x W x 3."""
    arr = np.asarray(image)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.ndim == 2:
        arr = np.repeat(_scale_to_uint8(arr)[:, :, None], 3, axis=2)
    elif arr.ndim == 3 and arr.shape[2] in (2, 3, 4):
        arr = _scale_to_uint8(arr)
        arr = np.repeat(arr[:, :, :1], 3, axis=2) if arr.shape[2] == 2 else arr[:, :, :3]
    else:
        raise InputError(f'an image must be H x W or H x W x C with C in 1..4, got shape {arr.shape}')
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise InputError(f'the image is empty (shape {arr.shape})')
    return np.ascontiguousarray(arr)


def _pil_to_rgb(img: Image.Image) -> np.ndarray:
    if img.mode in ('I;16', 'I;16B', 'I;16L', 'I;16N', 'I', 'F'):
        arr = np.asarray(img)
        if img.mode == 'I' and arr.size and arr.max() <= 255 and arr.min() >= 0:
            return to_rgb_uint8(arr.astype(np.uint8))
        if img.mode == 'F':
            return to_rgb_uint8(arr.astype(np.float32))
        return to_rgb_uint8(arr.astype(np.int64))   # signed 32-bit data keeps its sign
    if img.mode == 'P' and 'transparency' in img.info:
        img = img.convert('RGBA')
    if img.mode != 'RGB':
        img = img.convert('RGB')
    return np.array(img, dtype=np.uint8)  # a writable copy (np.asarray of a PIL image is read-only)


def load_image(path: PathLike) -> np.ndarray:
    """Read an image file as RGB uint8 H x W x 3, EXIF orientation applied.

    Raises :class:`ImageLoadError` naming the file and the reason (missing, not an image, truncated...).
    """
    path = Path(path)
    if path.is_dir():
        raise ImageLoadError(f'{path} is a folder, not an image file')
    if not path.is_file():
        raise ImageLoadError(f'image file not found: {path}')
    if path.stat().st_size == 0:
        raise ImageLoadError(f'image file is empty (0 bytes): {path}')
    try:
        with Image.open(path) as img:
            img.load()
            try:
                img = ImageOps.exif_transpose(img)
            except Exception:  # a broken EXIF block must not make a readable image unreadable
                pass
            arr = _pil_to_rgb(img)
    except UnidentifiedImageError:
        raise ImageLoadError(f'{path} is not an image file that can be read (unknown or corrupt format)')
    except Image.DecompressionBombError as e:
        raise ImageLoadError(f'{path} is too large to open safely ({e})')
    except (OSError, SyntaxError, ValueError) as e:
        raise ImageLoadError(f'cannot read image {path}: {e} (the file may be truncated or corrupt)')
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ImageLoadError(f'image {path} has no pixels')
    return arr


def load_mask(path: PathLike, shape: Optional[Tuple[int, int]] = None) -> np.ndarray:
    """Read a binary mask file (0/255, 0/1, colour or alpha masks) as bool H x W.

    A pixel is set when any channel is above half of the file's value range. With ``shape`` given, a mask
    of another size raises :class:`InputError` (resizing would silently misplace it).
    """
    path = Path(path)
    if not path.is_file():
        raise ImageLoadError(f'mask file not found: {path}')
    try:
        with Image.open(path) as img:
            img.load()
            img = ImageOps.exif_transpose(img)
            if img.mode == 'P':
                arr = np.asarray(img)  # palette index: 0 = background, anything else = object
                mask = arr > 0
            else:
                if img.mode in ('RGBA', 'LA'):
                    img = img.convert('RGBA')
                    arr = np.asarray(img)
                    mask = arr[:, :, :3].max(axis=2) > 127 if arr[:, :, 3].min() == 255 else arr[:, :, 3] > 127
                else:
                    arr = np.asarray(img)
                    if arr.ndim == 3:
                        arr = arr.max(axis=2)
                    top = float(arr.max()) if arr.size else 0.0
                    if np.issubdtype(arr.dtype, np.floating) and top <= 1:
                        mask = arr > 0.5   # a probability map
                    else:
                        mask = arr > (0 if top <= 1 else (top / 2 if arr.dtype != np.uint8 else 127))
    except UnidentifiedImageError:
        raise ImageLoadError(f'{path} is not an image file that can be read as a mask')
    except Image.DecompressionBombError as e:
        raise ImageLoadError(f'mask {path} is too large to open safely ({e})')
    except (OSError, SyntaxError, ValueError) as e:
        raise ImageLoadError(f'cannot read mask {path}: {e}')
    if shape is not None and tuple(mask.shape[:2]) != tuple(shape[:2]):
        raise InputError(f'mask {path.name} is {mask.shape[1]}x{mask.shape[0]} (WxH) but the image is '
                         f'{shape[1]}x{shape[0]}; load a mask made for this image')
    return mask


def save_image(path: PathLike, image: np.ndarray) -> None:
    """Write an array with Pillow, atomically (temp file + rename), creating the folder if needed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f'.{path.name}.tmp{os.getpid()}')
    try:
        Image.fromarray(image).save(tmp, format=Image.registered_extensions().get(path.suffix.lower(), 'PNG'))
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
