"""ZoomIn: crop the network input around the current object and resize the crop (RITM's test-time zoom).

From the ``skip_clicks + 1``-th click on, the previous probability map (thresholded at ``prob_thresh``)
plus the positive clicks give the object box; it is expanded by ``expansion_ratio`` (at least
``min_crop_size`` on each side), clamped to the image, and the crop is resized so that its longer side is
``target_size``. The box is kept while every positive click lies inside it and the new box overlaps it
with IoU >= ``recompute_thresh_iou``. Predictions are resized back and pasted into a zero map.
Boxes are ``(rmin, rmax, cmin, cmax)``, inclusive.
"""
from __future__ import annotations

from typing import Any, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F

from isegm.errors import InputError
from isegm.inference.clicker import Click
from isegm.inference.transforms.base import BaseTransform, ClicksLists

BBox = Tuple[int, int, int, int]


class ZoomIn(BaseTransform):
    def __init__(self, target_size: Union[int, Tuple[int, int]] = 400, skip_clicks: int = 1,
                 expansion_ratio: float = 1.4, min_crop_size: int = 200, recompute_thresh_iou: float = 0.5,
                 prob_thresh: float = 0.50):
        super().__init__()
        sizes = target_size if isinstance(target_size, tuple) else (target_size,)   # a number or (h, w)
        if not all(isinstance(v, (int, float, np.integer, np.floating)) and np.isfinite(v) and v >= 1
                   for v in sizes) or len(sizes) != (2 if isinstance(target_size, tuple) else 1):
            raise InputError(f'target_size must be a positive number or a (height, width) tuple of them, '
                             f'got {target_size!r}')
        self.target_size = target_size
        self.min_crop_size = min_crop_size
        self.skip_clicks = skip_clicks
        self.expansion_ratio = expansion_ratio
        self.recompute_thresh_iou = recompute_thresh_iou
        self.prob_thresh = prob_thresh

        self._input_image_shape: Optional[Tuple[int, ...]] = None
        self._prev_probs: Optional[np.ndarray] = None   # last full-size probability map, 1 x 1 x H x W
        self._object_roi: Optional[BBox] = None
        self._roi_image: Optional[torch.Tensor] = None

    @property
    def object_roi(self) -> Optional[BBox]:
        """The current crop box ``(rmin, rmax, cmin, cmax)`` (inclusive), or None when not zoomed."""
        return self._object_roi

    def transform(self, image_nd: torch.Tensor, clicks_lists: ClicksLists) -> Tuple[torch.Tensor, ClicksLists]:
        if image_nd.shape[0] != 1 or len(clicks_lists) != 1:
            raise InputError('ZoomIn works on a single image; put it before AddHorizontalFlip in the chain')
        self.image_changed = False

        clicks_list = clicks_lists[0]
        if len(clicks_list) <= self.skip_clicks:
            return image_nd, clicks_lists

        self._input_image_shape = tuple(image_nd.shape)

        current_object_roi = None
        if self._prev_probs is not None:
            current_pred_mask = (self._prev_probs > self.prob_thresh)[0, 0]
            if current_pred_mask.sum() > 0:
                current_object_roi = get_object_roi(current_pred_mask, clicks_list,
                                                    self.expansion_ratio, self.min_crop_size)

        if current_object_roi is None:
            if self.skip_clicks >= 0:
                # Nothing predicted: run on the whole image. (RITM keeps a stale crop here and then squeezes
                # the full-size prediction into it; dropping the crop returns the prediction where it is.)
                if self._object_roi is not None:
                    self._object_roi = None
                    self._roi_image = None
                    self.image_changed = True
                return image_nd, clicks_lists
            current_object_roi = 0, image_nd.shape[2] - 1, 0, image_nd.shape[3] - 1

        if (self._object_roi is None or not check_object_roi(self._object_roi, clicks_list)
                or get_bbox_iou(current_object_roi, self._object_roi) < self.recompute_thresh_iou):
            self._object_roi = current_object_roi
            self.image_changed = True
        # Recropped every time: for ITER-M models the previous-mask channel changes between clicks.
        self._roi_image = get_roi_image_nd(image_nd, self._object_roi, self.target_size)

        return self._roi_image.to(image_nd.device), [self._transform_clicks(clicks_list)]

    def inv_transform(self, prob_map: torch.Tensor) -> torch.Tensor:
        if self._object_roi is None:
            self._prev_probs = prob_map.detach().cpu().numpy()
            return prob_map

        if prob_map.shape[0] != 1:
            raise InputError('ZoomIn.inv_transform expects a batch of one map')
        rmin, rmax, cmin, cmax = self._object_roi
        prob_map = F.interpolate(prob_map, size=(rmax - rmin + 1, cmax - cmin + 1), mode='bilinear',
                                 align_corners=True)
        if self._prev_probs is not None:
            new_prob_map = torch.zeros(self._prev_probs.shape, device=prob_map.device, dtype=prob_map.dtype)
            new_prob_map[:, :, rmin:rmax + 1, cmin:cmax + 1] = prob_map
        else:
            new_prob_map = prob_map
        self._prev_probs = new_prob_map.detach().cpu().numpy()
        return new_prob_map

    def check_possible_recalculation(self) -> bool:
        """True when the last full-image prediction covers a small part of the image, so that RITM
        recomputes it at once through a crop (only with ``skip_clicks <= 0``)."""
        if self._prev_probs is None or self._object_roi is not None or self.skip_clicks > 0:
            return False
        pred_mask = (self._prev_probs > self.prob_thresh)[0, 0]
        if pred_mask.sum() > 0:
            possible_object_roi = get_object_roi(pred_mask, [], self.expansion_ratio, self.min_crop_size)
            image_roi = (0, self._input_image_shape[2] - 1, 0, self._input_image_shape[3] - 1)
            if get_bbox_iou(possible_object_roi, image_roi) < 0.50:
                return True
        return False

    def get_state(self) -> Tuple[Any, ...]:
        # shared, not copied: neither array is ever written in place (each click makes new ones)
        roi_image = self._roi_image.cpu() if self._roi_image is not None else None
        return self._input_image_shape, self._object_roi, self._prev_probs, roi_image, self.image_changed

    def set_state(self, state: Tuple[Any, ...]) -> None:
        self._input_image_shape, self._object_roi, self._prev_probs, self._roi_image, self.image_changed = state

    def reset(self) -> None:
        self._input_image_shape = None
        self._object_roi = None
        self._prev_probs = None
        self._roi_image = None
        self.image_changed = False

    def _transform_clicks(self, clicks_list: List[Click]) -> List[Click]:
        if self._object_roi is None:
            return clicks_list
        rmin, rmax, cmin, cmax = self._object_roi
        crop_height, crop_width = self._roi_image.shape[2:]
        out = []
        for click in clicks_list:
            new_r = crop_height * (click.coords[0] - rmin) / (rmax - rmin + 1)
            new_c = crop_width * (click.coords[1] - cmin) / (cmax - cmin + 1)
            out.append(click.copy(coords=(new_r, new_c)))
        return out


def get_object_roi(pred_mask: np.ndarray, clicks_list: Sequence[Click], expansion_ratio: float,
                   min_crop_size: Optional[int]) -> BBox:
    """Box of ``pred_mask`` plus the positive clicks, expanded and clamped to the image."""
    pred_mask = pred_mask.copy()
    for click in clicks_list:
        if click.is_positive:
            pred_mask[int(click.coords[0]), int(click.coords[1])] = 1
    bbox = expand_bbox(get_bbox_from_mask(pred_mask), expansion_ratio, min_crop_size)
    h, w = pred_mask.shape[:2]
    return clamp_bbox(bbox, 0, h - 1, 0, w - 1)


def get_roi_image_nd(image_nd: torch.Tensor, object_roi: BBox,
                     target_size: Union[int, Tuple[int, int]]) -> torch.Tensor:
    """Crop ``object_roi`` and resize it (bilinear, align_corners=True): the longer side to ``target_size``,
    or exactly to ``(h, w)`` when ``target_size`` is a tuple."""
    rmin, rmax, cmin, cmax = object_roi
    height = rmax - rmin + 1
    width = cmax - cmin + 1
    if isinstance(target_size, tuple):
        new_height, new_width = (max(1, int(round(v))) for v in target_size)
    else:
        scale = target_size / max(height, width)
        # At least one pixel: a very elongated box (e.g. 5000 x 3) would round its short side to 0.
        new_height = max(1, int(round(height * scale)))
        new_width = max(1, int(round(width * scale)))
    with torch.no_grad():
        roi = image_nd[:, :, rmin:rmax + 1, cmin:cmax + 1]
        return F.interpolate(roi, size=(new_height, new_width), mode='bilinear', align_corners=True)


def check_object_roi(object_roi: BBox, clicks_list: Sequence[Click]) -> bool:
    """True when every positive click lies inside the box (the last row/column counting as outside)."""
    for click in clicks_list:
        if click.is_positive:
            if click.coords[0] < object_roi[0] or click.coords[0] >= object_roi[1]:
                return False
            if click.coords[1] < object_roi[2] or click.coords[1] >= object_roi[3]:
                return False
    return True


def get_bbox_from_mask(mask: np.ndarray) -> BBox:
    rows = np.flatnonzero(np.any(mask, axis=1))
    cols = np.flatnonzero(np.any(mask, axis=0))
    return int(rows[0]), int(rows[-1]), int(cols[0]), int(cols[-1])


def expand_bbox(bbox: BBox, expand_ratio: float, min_crop_size: Optional[int] = None) -> BBox:
    rmin, rmax, cmin, cmax = bbox
    rcenter = 0.5 * (rmin + rmax)
    ccenter = 0.5 * (cmin + cmax)
    height = expand_ratio * (rmax - rmin + 1)
    width = expand_ratio * (cmax - cmin + 1)
    if min_crop_size is not None:
        height = max(height, min_crop_size)
        width = max(width, min_crop_size)
    return (int(round(rcenter - 0.5 * height)), int(round(rcenter + 0.5 * height)),
            int(round(ccenter - 0.5 * width)), int(round(ccenter + 0.5 * width)))


def clamp_bbox(bbox: BBox, rmin: int, rmax: int, cmin: int, cmax: int) -> BBox:
    return max(rmin, bbox[0]), min(rmax, bbox[1]), max(cmin, bbox[2]), min(cmax, bbox[3])


def get_bbox_iou(b1: Sequence[int], b2: Sequence[int]) -> float:
    """IoU of two inclusive boxes, computed as the product of the row and column segment IoUs (as RITM)."""
    return _segments_iou(b1[:2], b2[:2]) * _segments_iou(b1[2:4], b2[2:4])


def _segments_iou(s1: Sequence[int], s2: Sequence[int]) -> float:
    a, b = s1
    c, d = s2
    intersection = max(0, min(b, d) - max(a, c) + 1)
    union = max(1e-6, max(b, d) - min(a, c) + 1)
    return intersection / union
