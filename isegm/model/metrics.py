"""Training metrics: running IoU with an adaptive threshold (RITM's ``AdaptiveIoU``) and plain IoU."""
from __future__ import annotations

from typing import Optional

import numpy as np
import torch


def binary_iou(pred: np.ndarray, gt: np.ndarray, ignore: Optional[np.ndarray] = None) -> float:
    """IoU of two boolean masks; pixels where ``ignore`` is true do not count (empty union -> 1.0)."""
    pred, gt = pred.astype(bool), gt.astype(bool)
    if ignore is not None:
        keep = ~ignore.astype(bool)
        pred, gt = pred & keep, gt & keep
    union = np.logical_or(pred, gt).sum()
    return float(np.logical_and(pred, gt).sum() / union) if union > 0 else 1.0


class TrainMetric:
    """Base class: ``update(pred_logits, gt)`` per batch, ``get_epoch_value()``, ``reset_epoch_stats()``."""
    name = 'metric'

    def update(self, pred: torch.Tensor, gt: torch.Tensor) -> None:
        raise NotImplementedError

    def get_epoch_value(self) -> float:
        raise NotImplementedError

    def reset_epoch_stats(self) -> None:
        raise NotImplementedError


class AdaptiveIoU(TrainMetric):
    """IoU averaged over an epoch with a threshold that follows the best of three candidate thresholds
    (current, +step, -step), smoothed with ``thresh_beta`` (RITM)."""
    name = 'adaptive_iou'

    def __init__(self, init_thresh: float = 0.4, thresh_step: float = 0.025, thresh_beta: float = 0.99,
                 iou_beta: float = 0.9, ignore_label: int = -1, from_logits: bool = True):
        self._ignore_label, self._from_logits = ignore_label, from_logits
        self._iou_thresh, self._thresh_step = init_thresh, thresh_step
        self._thresh_beta, self._iou_beta = thresh_beta, iou_beta
        self._ema_iou = 0.0
        self._epoch_iou_sum = 0.0
        self._epoch_batch_count = 0

    @staticmethod
    def _iou(pred: torch.Tensor, gt: torch.Tensor, ignore: torch.Tensor) -> float:
        keep = ~ignore
        inter = ((pred & gt) & keep).sum(dim=(1, 2, 3)).float()
        union = ((pred | gt) & keep).sum(dim=(1, 2, 3)).float()
        nonempty = union > 0
        return float((inter[nonempty] / union[nonempty]).mean()) if nonempty.any() else 1.0

    def update(self, pred: torch.Tensor, gt: torch.Tensor) -> None:
        pred = pred.detach().float()
        if self._from_logits:
            pred = torch.sigmoid(pred)
        gt = gt.view(pred.shape)
        ignore = gt == self._ignore_label
        gt_mask = gt > 0.5
        max_iou, best = self._iou(pred > self._iou_thresh, gt_mask, ignore), self._iou_thresh
        for t in (self._iou_thresh - self._thresh_step, self._iou_thresh + self._thresh_step):
            iou = self._iou(pred > t, gt_mask, ignore)
            if iou > max_iou:
                max_iou, best = iou, t
        self._iou_thresh = self._thresh_beta * self._iou_thresh + (1 - self._thresh_beta) * best
        self._ema_iou = self._iou_beta * self._ema_iou + (1 - self._iou_beta) * max_iou
        self._epoch_iou_sum += max_iou
        self._epoch_batch_count += 1

    def get_epoch_value(self) -> float:
        return self._epoch_iou_sum / self._epoch_batch_count if self._epoch_batch_count else 0.0

    def reset_epoch_stats(self) -> None:
        self._epoch_iou_sum = 0.0
        self._epoch_batch_count = 0

    @property
    def iou_thresh(self) -> float:
        return self._iou_thresh
