"""LimitLongestSide: shrink images whose longer side exceeds ``max_size`` before the network sees them."""
from __future__ import annotations

from typing import Any, Optional, Tuple

import torch
import torch.nn.functional as F

from isegm.errors import InputError
from isegm.inference.transforms.base import BaseTransform, ClicksLists
from isegm.inference.transforms.zoom_in import get_roi_image_nd


class LimitLongestSide(BaseTransform):
    """Resize the whole input (bilinear, align_corners=True) so that its longer side is ``max_size`` when it
    is longer; clicks are scaled as RITM does (``y' = h' * y / H``); predictions are resized back to H x W.
    Smaller inputs pass through unchanged."""

    def __init__(self, max_size: int = 800):
        super().__init__()
        if max_size <= 0:
            raise InputError(f'max_size must be positive, got {max_size}')
        self.max_size = max_size
        self._input_size: Optional[Tuple[int, int]] = None   # (H, W) when resizing, else None

    def transform(self, image_nd: torch.Tensor, clicks_lists: ClicksLists) -> Tuple[torch.Tensor, ClicksLists]:
        if image_nd.shape[0] != 1 or len(clicks_lists) != 1:
            raise InputError('LimitLongestSide works on a single image; put it before AddHorizontalFlip')
        height, width = image_nd.shape[2:4]
        if max(height, width) <= self.max_size:
            self.image_changed = False
            self._input_size = None
            return image_nd, clicks_lists

        self.image_changed = True   # as RITM: the resized input is rebuilt on every call
        self._input_size = (height, width)
        resized = get_roi_image_nd(image_nd, (0, height - 1, 0, width - 1), self.max_size)
        new_h, new_w = resized.shape[2:]
        clicks = [c.copy(coords=(new_h * c.coords[0] / height, new_w * c.coords[1] / width))
                  for c in clicks_lists[0]]
        return resized, [clicks]

    def inv_transform(self, prob_map: torch.Tensor) -> torch.Tensor:
        if self._input_size is None:
            return prob_map
        return F.interpolate(prob_map, size=self._input_size, mode='bilinear', align_corners=True)

    def reset(self) -> None:
        self._input_size = None
        self.image_changed = False

    def get_state(self) -> Any:
        return self._input_size, self.image_changed

    def set_state(self, state: Any) -> None:
        self._input_size, self.image_changed = state
