"""Per-epoch validation of click models: simulated clicks on whole images, IoU per click, NoC@85/90.

The next click follows the evaluation protocol (centre of the largest error region, by distance
transform), computed here in a few lines so that training does not depend on the inference package.
"""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np
import torch
from scipy.ndimage import distance_transform_edt

from isegm.model.metrics import binary_iou


def next_click(pred: np.ndarray, gt: np.ndarray, ignore: Optional[np.ndarray] = None,
               pad: bool = True) -> Tuple[int, int, bool]:
    """``(y, x, is_positive)`` at the interior-most pixel of the larger error (false negatives win ties
    with false positives only when strictly larger, as the reference clicker)."""
    valid = np.ones_like(gt, bool) if ignore is None else ~ignore
    fn = np.logical_and(np.logical_and(gt, ~pred), valid)
    fp = np.logical_and(np.logical_and(~gt, pred), valid)
    if pad:
        fn, fp = np.pad(fn, 1), np.pad(fp, 1)
    fn_dt = distance_transform_edt(fn)
    fp_dt = distance_transform_edt(fp)
    if pad:
        fn_dt, fp_dt = fn_dt[1:-1, 1:-1], fp_dt[1:-1, 1:-1]
    is_positive = fn_dt.max() > fp_dt.max()
    dt = fn_dt if is_positive else fp_dt
    y, x = np.argwhere(dt == dt.max())[0]
    return int(y), int(x), bool(is_positive)


def clicks_to_points(clicks: Sequence[Tuple[float, float, bool]]) -> torch.Tensor:
    """Clicks ``(y, x, is_positive)`` in order -> RITM points tensor ``1 x 2N x 3``."""
    pos = [[y, x, i] for i, (y, x, p) in enumerate(clicks) if p]
    neg = [[y, x, i] for i, (y, x, p) in enumerate(clicks) if not p]
    n = max(len(pos), len(neg), 1)
    pad = [[-1.0, -1.0, -1.0]]
    rows = pos + pad * (n - len(pos)) + neg + pad * (n - len(neg))
    return torch.tensor(rows, dtype=torch.float32)[None]


@torch.no_grad()
def evaluate_clicks(model: torch.nn.Module, samples: Sequence[Tuple[np.ndarray, np.ndarray, Optional[np.ndarray]]],
                    max_clicks: int = 20, iou_thrs: Sequence[float] = (0.85, 0.90), pred_thr: float = 0.49,
                    max_size: int = 400, device='cpu') -> Dict[str, float]:
    """Mean NoC@thr, mean IoU after 1/5 clicks over ``samples`` = ``(image uint8, gt bool, ignore bool|None)``.

    Images are shrunk so that the longer side is at most ``max_size``; clicks stop once every threshold
    is reached.
    """
    model.eval()
    with_prev = getattr(model, 'with_prev_mask', False)
    nocs = {t: [] for t in iou_thrs}
    iou1, iou5 = [], []
    for image, gt, ignore in samples:
        h, w = gt.shape
        f = min(1.0, max_size / max(h, w))
        if f < 1.0:
            size = (max(1, round(w * f)), max(1, round(h * f)))
            image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
            gt = cv2.resize(gt.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST) > 0
            if ignore is not None:
                ignore = cv2.resize(ignore.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST) > 0
        x = torch.from_numpy(image.transpose(2, 0, 1).copy()).float().div(255)[None].to(device)
        prob = torch.zeros_like(x[:, :1])
        pred = np.zeros(gt.shape, bool)
        clicks: List[Tuple[int, int, bool]] = []
        ious: List[float] = []
        for _ in range(max_clicks):
            clicks.append(next_click(pred, gt, ignore))
            net_in = torch.cat((x, prob), dim=1) if with_prev else x
            prob = torch.sigmoid(model(net_in, clicks_to_points(clicks).to(device))['instances'])
            pred = prob[0, 0].cpu().numpy() > pred_thr
            ious.append(binary_iou(pred, gt, ignore))
            if ious[-1] >= max(iou_thrs):
                break
        for t in iou_thrs:
            reached = [i for i, v in enumerate(ious) if v >= t]
            nocs[t].append(reached[0] + 1 if reached else max_clicks)
        iou1.append(ious[0])
        iou5.append(ious[min(4, len(ious) - 1)] if len(ious) < 5 else ious[4])
    out = {f'NoC@{int(round(t * 100))}': float(np.mean(v)) for t, v in nocs.items()}
    out.update({'IoU@1': float(np.mean(iou1)), 'IoU@5': float(np.mean(iou5)), 'n': len(iou1)})
    return out
