"""Test-time transforms: each maps the network input (image and clicks) forward and the prediction back.

A predictor runs ``transform`` through its chain in order and ``inv_transform`` in reverse order.
``image_nd`` is ``B x C x H x W`` (RGB in [0, 1], plus the previous mask for ITER-M models);
``clicks_lists`` holds one list of :class:`~isegm.inference.clicker.Click` per batch item.
"""
from __future__ import annotations

from typing import Any, List, Tuple

import torch

from isegm.inference.clicker import Click

ClicksLists = List[List[Click]]


class BaseTransform:
    """Interface of a test-time transform. ``image_changed`` tells whether the last ``transform`` produced
    a network input different from the one before (BRS predictors restart their optimisation then)."""

    def __init__(self) -> None:
        self.image_changed = False

    def transform(self, image_nd: torch.Tensor, clicks_lists: ClicksLists) -> Tuple[torch.Tensor, ClicksLists]:
        raise NotImplementedError

    def inv_transform(self, prob_map: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def reset(self) -> None:
        """Forget everything about the current image."""
        raise NotImplementedError

    def get_state(self) -> Any:
        raise NotImplementedError

    def set_state(self, state: Any) -> None:
        raise NotImplementedError


class SigmoidForPred(BaseTransform):
    """Identity on the way in; logits -> probabilities on the way back."""

    def transform(self, image_nd: torch.Tensor, clicks_lists: ClicksLists) -> Tuple[torch.Tensor, ClicksLists]:
        return image_nd, clicks_lists

    def inv_transform(self, prob_map: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(prob_map)

    def reset(self) -> None:
        pass

    def get_state(self) -> None:
        return None

    def set_state(self, state: Any) -> None:
        pass
