"""Turning a training checkpoint into a shipped one: pick the best epoch of an experiment by its held-out
validation, store the weights in fp16 (``{'state_dict', 'config', 'info'}``, RITM format) and record
where the model comes from (data, commands, epochs, measured metrics) in ``info``.

``isegm.load_model`` reads the result like any other checkpoint; the fp16 tensors are cast back to
float32 when they are loaded into the model.
"""
from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple, Union

import torch

from isegm.errors import CheckpointError

logger = logging.getLogger(__name__)

PathLike = Union[str, Path]
FP16_MAX = 65504.0
LOWER_IS_BETTER = ('NoC', 'loss')  # metric names containing these are minimised, all others maximised


def read_metrics(exp_dir: PathLike) -> List[Dict[str, Any]]:
    """The per-epoch rows of ``exp_dir/metrics.jsonl`` (empty when the file does not exist yet)."""
    path = Path(exp_dir) / 'metrics.jsonl'
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text(encoding='utf-8').splitlines():
        line = line.strip()
        if line:
            rows.append(json.loads(line))
    return rows


def default_metric(rows: List[Dict[str, Any]]) -> str:
    """``val_NoC@90`` for click models, ``val_mIoU`` for extreme-point models, else ``train_loss``."""
    keys = set().union(*(r.keys() for r in rows)) if rows else set()
    for key in ('val_NoC@90', 'val_mIoU', 'val_loss', 'train_loss'):
        if key in keys:
            return key
    raise CheckpointError('metrics.jsonl has no validation or loss column to choose an epoch by; '
                          'pass --checkpoint with an explicit file instead')


def best_checkpoint(exp_dir: PathLike, metric: Optional[str] = None) -> Tuple[Path, Dict[str, Any]]:
    """The ``checkpoints/NNN.pth`` of the epoch with the best ``metric`` (default: :func:`default_metric`;
    NoC and losses are minimised, IoUs maximised; NoC ties go to the higher ``val_IoU@5``, then to the
    later epoch). Returns (path, its row)."""
    exp_dir = Path(exp_dir)
    rows = read_metrics(exp_dir)
    if not rows:
        raise CheckpointError(f'{exp_dir} has no metrics.jsonl rows yet: no epoch has finished. Wait for the '
                              f'first epoch or pass a checkpoint file')
    metric = metric or default_metric(rows)
    sign = 1.0 if any(s in metric for s in LOWER_IS_BETTER) else -1.0
    candidates = [r for r in rows if isinstance(r.get(metric), (int, float))
                  and (exp_dir / 'checkpoints' / f'{int(r["epoch"]):03d}.pth').is_file()]
    if not candidates:
        raise CheckpointError(f'no epoch of {exp_dir} has both {metric!r} in metrics.jsonl and a checkpoints/NNN.pth')
    # ties (e.g. NoC stuck at the click limit early in training) go to the better IoU, then the later epoch
    tie = 'val_IoU@5' if 'NoC' in metric else metric
    best = min(candidates, key=lambda r: (sign * float(r[metric]), -float(r.get(tie, 0.0) or 0.0),
                                          -int(r['epoch'])))
    path = exp_dir / 'checkpoints' / f'{int(best["epoch"]):03d}.pth'
    logger.info('best epoch of %s by %s: %d (%s=%.4g)', exp_dir, metric, best['epoch'], metric, best[metric])
    return path, best


def to_half_state_dict(state_dict: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """fp16 copies of the float tensors (integer buffers unchanged; a tensor beyond fp16's range stays fp32)."""
    out = {}
    for key, value in state_dict.items():
        if value.is_floating_point():
            fits = value.numel() == 0 or float(value.detach().abs().max()) <= FP16_MAX
            if not fits:
                logger.warning('%s exceeds the fp16 range: kept in float32', key)
            value = value.detach().to(torch.float16 if fits else torch.float32)
        out[key] = value.clone().contiguous()
    return out


def export_bundled(src: PathLike, dst: PathLike, info: Optional[Dict[str, Any]] = None, half: bool = True,
                   max_mb: float = 20.0) -> Path:
    """Write the shipped checkpoint ``dst`` from the training checkpoint ``src``.

    Args:
        src: a checkpoint in our/RITM format (``{'state_dict', 'config', 'info'}``).
        dst: output file (``weights/<name>_bundled.pth``); written atomically.
        info: entries added to (and overriding) the source's ``info`` (commands, measured metrics, ...).
        half: store float tensors in fp16.
        max_mb: refuse to write a file larger than this.
    Returns:
        ``dst``. Raises :class:`CheckpointError` for a source without config or an oversized result.
    """
    src, dst = Path(src), Path(dst)
    try:
        obj = torch.load(src, map_location='cpu', weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many types for unreadable files
        raise CheckpointError(f'cannot read {src}: {exc}. Pass a checkpoint written by train.py') from exc
    if not (isinstance(obj, dict) and 'state_dict' in obj and 'config' in obj):
        raise CheckpointError(f'{src} is not a training checkpoint with a config ({{"state_dict", "config"}}); '
                              'export needs the files train.py writes under checkpoints/')
    state_dict = to_half_state_dict(obj['state_dict']) if half else dict(obj['state_dict'])
    src_info = dict(obj.get('info') or {})
    merged = dict(src_info)
    if 'epoch' in src_info:
        merged['epochs_trained'] = int(src_info['epoch']) + 1
    merged['exported_from'] = str(src)
    merged['storage'] = 'fp16' if half else 'fp32'
    merged.update(info or {})
    payload = {'state_dict': state_dict, 'config': obj['config'], 'info': merged}
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f'.{dst.name}.tmp{os.getpid()}')
    try:
        torch.save(payload, tmp)
        size_mb = tmp.stat().st_size / 2 ** 20
        if size_mb > max_mb:
            raise CheckpointError(f'the exported model is {size_mb:.1f} MB, over the {max_mb:g} MB limit; '
                                  'use a smaller backbone or decoder')
        os.replace(tmp, dst)
    finally:
        if tmp.exists():
            tmp.unlink()
    logger.info('exported %s -> %s (%.1f MB)', src, dst, dst.stat().st_size / 2 ** 20)
    return dst
