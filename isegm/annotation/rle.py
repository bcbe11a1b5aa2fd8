"""COCO-compatible run-length encoding of binary masks (own implementation, no pycocotools at run time).

COCO's RLE scans the mask in column-major (Fortran) order; ``counts`` alternates runs of 0 and 1 and
always starts with a run of zeros (possibly empty). The compressed string form stores each count
(after subtracting the count two places back, from the third on) in 5-bit groups with a continuation
bit, each group offset by 48 into printable ASCII — the format ``pycocotools.mask.encode`` writes.
"""
from __future__ import annotations

from typing import Dict, List, Sequence, Union

import numpy as np

from isegm.errors import InputError

RLE = Dict[str, Union[List[int], str]]


def mask_to_counts(mask: np.ndarray) -> List[int]:
    """Binary mask H x W -> uncompressed COCO run lengths (column-major, starting with zeros)."""
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise InputError(f'a mask must be H x W, got shape {mask.shape}')
    flat = (mask.ravel(order='F') != 0).astype(np.int8)
    if flat.size == 0:
        return []
    change = np.flatnonzero(np.diff(flat)) + 1
    bounds = np.concatenate(([0], change, [flat.size]))
    counts = np.diff(bounds).tolist()
    if flat[0] == 1:
        counts.insert(0, 0)
    return [int(c) for c in counts]


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
