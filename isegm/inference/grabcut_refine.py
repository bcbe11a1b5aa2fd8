"""GrabCut refinement of an extreme-point mask (the network's map sets the colour models' seeds).

The network's confident pixels are fixed (probability >= ``HIGH``: object, <= ``LOW``: background), the
rest is left to GrabCut's colour models, the extreme points themselves are object, and nothing outside
the points' box can become object (a margin around it only gives background samples). When GrabCut's
mask agrees with the network's mask by less than ``MIN_AGREEMENT`` (IoU), the colour models have failed
(object and background alike in colour) and the network's mask is kept.

Measured with the bundled extreme model (4 extreme points; docs/training.md): the constants are the best
of a small grid by the mean over training-pool sets (32 held-out COCO_MVal objects, 73 BSDS500 regions, 55
coco128 objects); the GrabCut / Berkeley figures of the grid were not used for the choice. With them
(`scripts/evaluate_model.py extreme`): GrabCut 0.838 -> 0.881, Berkeley 0.787 -> 0.839 mIoU. Held-out
COCO_MVal 0.845 -> 0.857, BSDS500 regions 0.687 -> 0.729; coco128, whose coarse polygon ground truth
rewards no boundary detail, 0.782 -> 0.779.
"""
from __future__ import annotations

import cv2
import numpy as np

from isegm.inference.evaluation import get_iou

LOW, HIGH = 0.2, 0.8        # probabilities at or beyond which the network's label is fixed
MIN_AGREEMENT = 0.6         # IoU(GrabCut mask, network mask) below which the network's mask is kept
MARGIN = 20                 # pixels around the points' box that GrabCut sees (as background samples)
POINT_RADIUS = 3            # the extreme points are object within this radius
ITERATIONS = 3
MAX_SIDE = 640              # larger crops are refined at this longest side and scaled back


def refine_with_grabcut(image: np.ndarray, prob: np.ndarray, points_xy: np.ndarray,
                        threshold: float = 0.5) -> np.ndarray:
    """Boolean ``H x W`` mask: GrabCut seeded by ``prob`` (``H x W`` float, the network's map) and the
    extreme points ``points_xy`` (4 x 2 int ``(x, y)`` rows, inside the image). ``image``: ``H x W x 3``
    uint8. Deterministic (OpenCV's random generator is seeded for each call)."""
    net = prob > threshold
    if not net.any():
        return net
    h, w = prob.shape
    xs, ys = points_xy[:, 0], points_xy[:, 1]
    y0, y1 = max(int(ys.min()) - MARGIN, 0), min(int(ys.max()) + MARGIN + 1, h)
    x0, x1 = max(int(xs.min()) - MARGIN, 0), min(int(xs.max()) + MARGIN + 1, w)
    crop = np.ascontiguousarray(image[y0:y1, x0:x1])
    crop_prob = prob[y0:y1, x0:x1].astype(np.float32)
    ch, cw = crop_prob.shape
    scale = min(1.0, MAX_SIDE / max(ch, cw))
    if scale < 1.0:
        size = (max(1, round(cw * scale)), max(1, round(ch * scale)))
        crop = cv2.resize(crop, size, interpolation=cv2.INTER_AREA)
        crop_prob = cv2.resize(crop_prob, size, interpolation=cv2.INTER_LINEAR)

    labels = np.full(crop_prob.shape, cv2.GC_PR_BGD, np.uint8)
    labels[crop_prob > threshold] = cv2.GC_PR_FGD
    labels[crop_prob >= HIGH] = cv2.GC_FGD
    labels[crop_prob <= LOW] = cv2.GC_BGD
    for x, y in zip(xs, ys):
        centre = (int(round((x - x0) * scale)), int(round((y - y0) * scale)))
        cv2.circle(labels, centre, POINT_RADIUS, int(cv2.GC_FGD), -1)
    # nothing beyond the extreme points: outside their box is background (also where a disk overlaps it)
    by0, by1 = int(round((ys.min() - y0) * scale)), int(round((ys.max() - y0) * scale)) + 1
    bx0, bx1 = int(round((xs.min() - x0) * scale)), int(round((xs.max() - x0) * scale)) + 1
    outside = np.ones(labels.shape, bool)
    outside[by0:by1, bx0:bx1] = False
    labels[outside] = cv2.GC_BGD
    is_fg = (labels == cv2.GC_FGD) | (labels == cv2.GC_PR_FGD)
    if is_fg.all() or not is_fg.any():
        return net                       # no background (or no object) samples: nothing to model
    cv2.setRNGSeed(0)
    try:
        cv2.grabCut(crop, labels, None, np.zeros((1, 65)), np.zeros((1, 65)), ITERATIONS, cv2.GC_INIT_WITH_MASK)
    except cv2.error:
        return net
    refined_crop = (labels == cv2.GC_FGD) | (labels == cv2.GC_PR_FGD)
    if scale < 1.0:
        refined_crop = cv2.resize(refined_crop.astype(np.uint8), (cw, ch), interpolation=cv2.INTER_NEAREST) > 0
    refined = np.zeros_like(net)
    refined[y0:y1, x0:x1] = refined_crop
    refined[:int(ys.min())] = refined[int(ys.max()) + 1:] = False        # scaling back may spill by a pixel
    refined[:, :int(xs.min())] = refined[:, int(xs.max()) + 1:] = False
    if not refined.any() or get_iou(net, refined) < MIN_AGREEMENT:
        return net
    return refined
