"""Loss of backpropagating refinement (BRS): how far the prediction is from the user's clicks."""
from __future__ import annotations

from typing import Tuple

import torch
from torch import nn


class BRSMaskLoss(nn.Module):
    """Squared distance of the probabilities to the click labels, averaged over each click mask.

    ``loss = sum(((1 - p) * pos)^2) / (sum(pos) + eps) + sum((p * neg)^2) / (sum(neg) + eps)``.
    Also returns the largest violation of each polarity, ``max|(1 - p) * pos|`` and ``max|p * neg|``,
    which the optimiser uses to stop early once every click is satisfied.
    """

    def __init__(self, eps: float = 1e-5):
        super().__init__()
        self._eps = eps

    def forward(self, result: torch.Tensor, pos_mask: torch.Tensor, neg_mask: torch.Tensor
                ) -> Tuple[torch.Tensor, float, float]:
        """``result``: probabilities ``B x 1 x H x W``; masks of the same shape (0/1 floats)."""
        pos_diff = (1 - result) * pos_mask
        pos_target = torch.sum(pos_diff ** 2) / (torch.sum(pos_mask) + self._eps)

        neg_diff = result * neg_mask
        neg_target = torch.sum(neg_diff ** 2) / (torch.sum(neg_mask) + self._eps)

        loss = pos_target + neg_target
        with torch.no_grad():
            f_max_pos = torch.max(torch.abs(pos_diff)).item()
            f_max_neg = torch.max(torch.abs(neg_diff)).item()
        return loss, f_max_pos, f_max_neg
