"""NoC evaluation: the standard click-by-click protocol of RITM / f-BRS and its summary figures.

For every sample the oracle :class:`~isegm.inference.clicker.Clicker` clicks into the largest error
region, the predictor answers, and the IoU with the ground truth (pixels labelled -1 ignored) is recorded
until it reaches ``max_iou_thr`` (after at least ``min_clicks`` clicks) or ``max_clicks`` clicks are made.
NoC@t = mean over samples of the first click count reaching IoU >= t (``max_clicks`` if never);
NoF@t = number of samples whose NoC@t equals ``max_clicks`` (RITM's ">=20@t" column).
"""
from __future__ import annotations

import logging
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

from isegm.errors import InputError
from isegm.inference.clicker import Click, Clicker

logger = logging.getLogger(__name__)

__all__ = ['get_iou', 'evaluate_sample', 'evaluate_dataset', 'compute_noc_metric', 'summarize',
           'pad_ious', 'get_time_metrics']


def get_iou(gt_mask: np.ndarray, pred_mask: np.ndarray, ignore_label: int = -1) -> float:
    """IoU of ``pred_mask`` with the object (``gt == 1``), pixels where ``gt == ignore_label`` excluded.

    Returns 1.0 when both the object and the prediction are empty (the reference code gives NaN there).
    """
    not_ignored = gt_mask != ignore_label
    obj = gt_mask == 1
    pred = np.asarray(pred_mask, dtype=bool)
    intersection = np.logical_and(np.logical_and(pred, obj), not_ignored).sum()
    union = np.logical_and(np.logical_or(pred, obj), not_ignored).sum()
    if union == 0:
        return 1.0
    return float(intersection / union)


def evaluate_sample(image: np.ndarray, gt_mask: np.ndarray, predictor, max_iou_thr: float,
                    pred_thr: float = 0.49, min_clicks: int = 1, max_clicks: int = 20,
                    sample_id: Optional[Any] = None, callback: Optional[Callable[..., None]] = None
                    ) -> Tuple[List[Click], np.ndarray, np.ndarray]:
    """Run the NoC protocol on one sample.

    Args:
        image: uint8 ``H x W x 3`` RGB.
        gt_mask: int ``H x W``: 1 object, 0 background, -1 ignored (in the IoU and by the clicker).
        predictor: a predictor (``set_input_image``, ``get_prediction(clicker)``).
        max_iou_thr: stop once the IoU reaches it (after ``min_clicks`` clicks).
        callback: called after every click as
            ``callback(image, gt_mask, pred_probs, sample_id, click_indx, clicks_list)``.

    Returns:
        ``(clicks_list, ious, pred_probs)``: the clicks made, float32 IoU after each click, and the last
        probability map.
    """
    gt_mask = np.asarray(gt_mask)
    if gt_mask.shape != tuple(np.asarray(image).shape[:2]):
        raise InputError(f'gt_mask has shape {gt_mask.shape}, the image {np.asarray(image).shape[:2]}: '
                         f'they must have the same height and width')
    if max_clicks < 1:
        raise InputError(f'max_clicks must be >= 1, got {max_clicks}')

    clicker = Clicker(gt_mask=gt_mask)
    pred_mask = np.zeros(gt_mask.shape, dtype=bool)
    ious: List[float] = []
    pred_probs = np.zeros(gt_mask.shape, dtype=np.float32)

    with torch.no_grad():
        predictor.set_input_image(image)
        for click_indx in range(max_clicks):
            clicker.make_next_click(pred_mask)
            pred_probs = predictor.get_prediction(clicker)
            pred_mask = pred_probs > pred_thr
            if callback is not None:
                callback(image, gt_mask, pred_probs, sample_id, click_indx, clicker.clicks_list)
            iou = get_iou(gt_mask, pred_mask)
            ious.append(iou)
            if iou >= max_iou_thr and click_indx + 1 >= min_clicks:
                break

    return clicker.clicks_list, np.array(ious, dtype=np.float32), pred_probs


def evaluate_dataset(dataset, predictor, **kwargs: Any) -> Tuple[List[np.ndarray], float, List[float]]:
    """Evaluate every sample of ``dataset`` (``len(dataset)``, ``dataset.get_sample(i)`` with ``.image`` and
    ``.gt_mask``); ``kwargs`` go to :func:`evaluate_sample` (``max_iou_thr`` is required), except
    ``progress=True``, which shows a tqdm bar (for command-line tools).

    Returns ``(all_ious, elapsed_seconds, seconds_per_click)``: one IoU array per sample, the total wall
    time, and per sample the time of its clicks divided by their number.
    """
    if 'max_iou_thr' not in kwargs:
        raise InputError('evaluate_dataset needs max_iou_thr=..., e.g. 0.90 for the NoC@90 protocol')
    progress = kwargs.pop('progress', False)
    all_ious: List[np.ndarray] = []
    spc: List[float] = []
    start = time.perf_counter()
    indices = range(len(dataset))
    if progress:
        from tqdm import tqdm
        indices = tqdm(indices, desc=getattr(dataset, 'name', 'dataset'), leave=False)
    for index in indices:
        sample = dataset.get_sample(index)
        t0 = time.perf_counter()
        _, sample_ious, _ = evaluate_sample(sample.image, sample.gt_mask, predictor, sample_id=index, **kwargs)
        spc.append((time.perf_counter() - t0) / max(1, len(sample_ious)))
        all_ious.append(sample_ious)
        logger.debug('sample %d: %d clicks, final IoU %.4f', index, len(sample_ious), sample_ious[-1])
    elapsed = time.perf_counter() - start
    return all_ious, elapsed, spc


def compute_noc_metric(all_ious: Sequence[np.ndarray], iou_thrs: Sequence[float], max_clicks: int = 20
                       ) -> Tuple[List[float], List[int]]:
    """``(noc_list, over_max_list)``: per threshold, the mean number of clicks to reach it (``max_clicks``
    when never reached) and the number of samples whose count equals ``max_clicks`` (as RITM counts NoF:
    a sample that first reaches the threshold at exactly ``max_clicks`` clicks counts too)."""
    noc_list: List[float] = []
    over_max_list: List[int] = []
    for thr in iou_thrs:
        scores = np.array([_noc(np.asarray(ious), thr, max_clicks) for ious in all_ious], dtype=int)
        noc_list.append(float(scores.mean()) if scores.size else float('nan'))
        over_max_list.append(int((scores == max_clicks).sum()))
    return noc_list, over_max_list


def _noc(ious: np.ndarray, thr: float, max_clicks: int) -> int:
    reached = ious >= thr
    return int(np.argmax(reached)) + 1 if np.any(reached) else max_clicks


def pad_ious(all_ious: Sequence[np.ndarray], n_clicks: int) -> np.ndarray:
    """``samples x n_clicks`` array: each IoU curve cut or padded with its last value (early stop)."""
    out = np.zeros((len(all_ious), n_clicks), dtype=np.float32)
    for i, ious in enumerate(all_ious):
        ious = np.asarray(ious, dtype=np.float32)
        if ious.size == 0:
            raise InputError(f'sample {i} has no IoU values')
        k = min(n_clicks, ious.size)
        out[i, :k] = ious[:k]
        out[i, k:] = ious[k - 1]
    return out


def get_time_metrics(all_ious: Sequence[np.ndarray], elapsed_time: float) -> Tuple[float, float]:
    """``(seconds per click, seconds per image)``."""
    n_clicks = sum(len(x) for x in all_ious)
    return elapsed_time / max(1, n_clicks), elapsed_time / max(1, len(all_ious))


def summarize(all_ious: Sequence[np.ndarray], max_clicks: int = 20, elapsed_time: Optional[float] = None
              ) -> Dict[str, float]:
    """Summary figures: ``NoC@80/85/90``, ``NoF@80/85/90``, ``mIoU@1``, ``mIoU@5`` (curves padded with their
    last value), ``num_samples``, and ``SPC`` / ``SPI`` (seconds per click / image) when ``elapsed_time``
    is given."""
    thrs = (0.80, 0.85, 0.90)
    noc, nof = compute_noc_metric(all_ious, thrs, max_clicks=max_clicks)
    out: Dict[str, float] = {'num_samples': len(all_ious)}
    for thr, n, f in zip(thrs, noc, nof):
        pct = int(round(thr * 100))
        out[f'NoC@{pct}'] = n
        out[f'NoF@{pct}'] = f
    if len(all_ious):
        padded = pad_ious(all_ious, max(5, max_clicks))
        out['mIoU@1'] = float(padded[:, 0].mean())
        out['mIoU@5'] = float(padded[:, 4].mean())
    if elapsed_time is not None:
        out['SPC'], out['SPI'] = get_time_metrics(all_ious, elapsed_time)
    return out
