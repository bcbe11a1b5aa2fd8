"""Horizontal-flip test-time augmentation."""
from __future__ import annotations

from typing import Any, Tuple

import torch

from isegm.errors import InputError
from isegm.inference.transforms.base import BaseTransform, ClicksLists


class AddHorizontalFlip(BaseTransform):
    """Append the mirrored image to the batch (clicks mirrored as ``x' = W - x - 1``); the inverse averages
    the prediction with the mirrored-back prediction of the second half of the batch."""

    def transform(self, image_nd: torch.Tensor, clicks_lists: ClicksLists) -> Tuple[torch.Tensor, ClicksLists]:
        if image_nd.dim() != 4:
            raise InputError(f'AddHorizontalFlip expects a B x C x H x W tensor, got shape {tuple(image_nd.shape)}')
        width = image_nd.shape[3]
        image_nd = torch.cat([image_nd, torch.flip(image_nd, dims=[3])], dim=0)
        flipped = [[c.copy(coords=(c.coords[0], width - c.coords[1] - 1)) for c in clicks]
                   for clicks in clicks_lists]
        return image_nd, list(clicks_lists) + flipped

    def inv_transform(self, prob_map: torch.Tensor) -> torch.Tensor:
        if prob_map.dim() != 4 or prob_map.shape[0] % 2 != 0:
            raise InputError(f'AddHorizontalFlip.inv_transform expects an even batch, got {tuple(prob_map.shape)}')
        n = prob_map.shape[0] // 2
        return 0.5 * (prob_map[:n] + torch.flip(prob_map[n:], dims=[3]))

    def reset(self) -> None:
        pass

    def get_state(self) -> None:
        return None

    def set_state(self, state: Any) -> None:
        pass
