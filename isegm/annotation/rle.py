"""COCO-compatible run-length encoding of binary masks (own implementation, no pycocotools at run time).

COCO's RLE scans the mask in column-major (Fortran) order; ``counts`` alternates runs of 0 and 1 and
always starts with a run of zeros (possibly empty). The compressed string form stores each count
(after subtracting the count two places back, from the third on) in 5-bit groups with a continuation
bit, each group offset by 48 into printable ASCII — the format ``pycocotools.mask.encode`` writes.
"""
from __future__ import annotations

from typing import Dict, List, Sequence, Union

import numpy as np

from isegm.annotation.box_mask import mask_box
from isegm.errors import InputError

RLE = Dict[str, Union[List[int], str]]


def mask_to_counts(mask: np.ndarray) -> List[int]:
    """Binary mask H x W -> uncompressed COCO run lengths (column-major, starting with zeros).

    Only the mask's bounding box is scanned (:func:`box_to_counts`): everything outside it is zeros,
    which only lengthens runs of zeros.
    """
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise InputError(f'a mask must be H x W, got shape {mask.shape}')
    if mask.dtype != bool:
        mask = mask != 0
    box = mask_box(mask) if mask.size else None
    if box is None:
        return [mask.size] if mask.size else []
    x0, y0, x1, y1 = box
    return box_to_counts(mask[y0:y1, x0:x1], y0, x0, mask.shape)


def box_to_counts(crop: np.ndarray, y0: int, x0: int, shape: Sequence[int]) -> List[int]:
    """COCO run lengths of the H x W (``shape``) mask that is the bool ``crop`` at rows ``y0:``, columns
    ``x0:`` and zeros elsewhere, computed from the crop alone.

    The crop is scanned in column-major order with one zero row of margin above and below where the image
    has one; the run boundaries found there are mapped back to positions in the whole mask.
    """
    h, w = int(shape[0]), int(shape[1])
    n = h * w
    if n == 0:
        return []
    crop = np.asarray(crop, dtype=bool)
    if not crop.any():
        return [n]
    ch, cw = crop.shape
    top, bottom = (1 if y0 > 0 else 0), (1 if y0 + ch < h else 0)     # zero margin rows where possible
    block = np.zeros((ch + top + bottom, cw), bool)
    block[top:top + ch] = crop
    y0 -= top
    bh = block.shape[0]
    # a zero before and after the box: what precedes / follows it in the whole mask (or nothing)
    seq = np.concatenate(([False], block.T.ravel(), [False]))
    q = np.flatnonzero(seq[1:] != seq[:-1]).astype(np.int64)   # box element q differs from element q - 1
    change = np.empty_like(q)
    # a run of ones starts at box element q; it ends right after box element q - 1 (the pixels skipped
    # between two columns of the box are zeros, so a run cannot continue across them)
    change[0::2] = _position(q[0::2], h, bh, x0, y0)
    change[1::2] = _position(q[1::2] - 1, h, bh, x0, y0) + 1
    change = change[change < n]                          # a run of ones that reaches the end of the mask
    bounds = np.concatenate(([0], change, [n]))
    return np.diff(bounds).tolist()


def _position(k: np.ndarray, h: int, bh: int, x0: int, y0: int) -> np.ndarray:
    """Column-major index in the whole mask (height ``h``) of element ``k`` of a box of height ``bh`` at (y0, x0)."""
    return (x0 + k // bh) * h + y0 + k % bh


def counts_to_mask(counts: Sequence[int], shape: Sequence[int]) -> np.ndarray:
    """Uncompressed COCO run lengths -> bool mask of ``shape`` (H, W)."""
    h, w = int(shape[0]), int(shape[1])
    counts = np.asarray(counts, dtype=np.int64)
    if counts.size and (counts < 0).any():
        raise InputError('RLE counts must be non-negative')
    if int(counts.sum()) != h * w:
        raise InputError(f'RLE counts sum to {int(counts.sum())}, expected {h * w} for a {h}x{w} mask; '
                         'the file is damaged')
    values = np.zeros(counts.size, dtype=bool)
    values[1::2] = True
    flat = np.repeat(values, counts)
    return flat.reshape((w, h)).T.copy()


def compress_counts(counts: Sequence[int]) -> str:
    """Uncompressed counts -> COCO's compressed ASCII string (as ``pycocotools`` writes it)."""
    out = []
    for i, count in enumerate(counts):
        x = int(count)
        if i > 2:
            x -= int(counts[i - 2])
        more = True
        while more:
            c = x & 0x1F
            x >>= 5
            more = (x != -1) if (c & 0x10) else (x != 0)
            if more:
                c |= 0x20
            out.append(chr(c + 48))
    return ''.join(out)


def decompress_counts(text: str) -> List[int]:
    """COCO's compressed ASCII string -> uncompressed counts."""
    counts: List[int] = []
    pos = 0
    while pos < len(text):
        x = 0
        k = 0
        more = True
        while more:
            if pos >= len(text):
                raise InputError('truncated RLE string; the file is damaged')
            c = ord(text[pos]) - 48
            x |= (c & 0x1F) << (5 * k)
            more = bool(c & 0x20)
            pos += 1
            k += 1
            if not more and (c & 0x10):
                x |= -1 << (5 * k)
        if len(counts) > 2:
            x += counts[-2]
        counts.append(x)
    return counts


def encode(mask: np.ndarray, compressed: bool = True) -> RLE:
    """Binary mask H x W -> COCO RLE dict ``{'size': [H, W], 'counts': str | list}``."""
    mask = np.asarray(mask)
    counts = mask_to_counts(mask)
    return {'size': [int(mask.shape[0]), int(mask.shape[1])],
            'counts': compress_counts(counts) if compressed else counts}


def encode_box(crop: np.ndarray, y0: int, x0: int, shape: Sequence[int], compressed: bool = True) -> RLE:
    """:func:`encode` of the ``shape`` mask that is ``crop`` at (``y0``, ``x0``) and zeros elsewhere,
    without making that mask."""
    counts = box_to_counts(crop, y0, x0, shape)
    return {'size': [int(shape[0]), int(shape[1])], 'counts': compress_counts(counts) if compressed else counts}


def decode(rle: RLE) -> np.ndarray:
    """COCO RLE dict (compressed string, bytes or list counts) -> bool mask H x W."""
    try:
        size = rle['size']
        counts = rle['counts']
    except (KeyError, TypeError) as exc:
        raise InputError(f'an RLE must be a dict with "size" and "counts", got {type(rle).__name__}') from exc
    if isinstance(counts, bytes):
        counts = counts.decode('ascii')
    if isinstance(counts, str):
        counts = decompress_counts(counts)
    return counts_to_mask(counts, size)


def area(rle: RLE) -> int:
    """Number of foreground pixels of an RLE."""
    counts = rle['counts']
    if isinstance(counts, (str, bytes)):
        counts = decompress_counts(counts if isinstance(counts, str) else counts.decode('ascii'))
    return int(sum(counts[1::2]))
