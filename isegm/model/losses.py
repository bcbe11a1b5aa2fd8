"""Training losses of RITM (and DEXTR's class-balanced BCE). Inputs are logits ``B x 1 x H x W`` and
targets in {0, 1} with ``ignore_label`` (-1) marking pixels that do not count. Each loss returns one
value per sample (shape ``B``); the trainer averages them.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class NormalizedFocalLossSigmoid(nn.Module):
    """Normalized Focal Loss (RITM): focal weights rescaled so that they sum to the number of valid
    pixels of each sample; the rescaling factor is detached by default."""

    def __init__(self, alpha: float = 0.25, gamma: float = 2.0, max_mult: float = -1, eps: float = 1e-12,
                 from_sigmoid: bool = False, detach_delimeter: bool = True, weight: float = 1.0,
                 size_average: bool = True, ignore_label: int = -1):
        super().__init__()
        self.alpha, self.gamma, self.max_mult, self.eps = alpha, gamma, max_mult, eps
        self.from_sigmoid, self.detach_delimeter = from_sigmoid, detach_delimeter
        self.weight, self.size_average, self.ignore_label = weight, size_average, ignore_label

    def forward(self, pred: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
        label = label.view(pred.shape).to(pred.dtype)
        one_hot = label > 0.5
        sample_weight = (label != self.ignore_label).to(pred.dtype)
        if not self.from_sigmoid:
            pred = torch.sigmoid(pred)
        alpha = torch.where(one_hot, self.alpha * sample_weight, (1 - self.alpha) * sample_weight)
        pt = torch.where(sample_weight > 0, 1.0 - torch.abs(label - pred), torch.ones_like(pred))
        beta = (1 - pt) ** self.gamma
        dims = tuple(range(1, pred.dim()))
        sw_sum = sample_weight.sum(dim=dims, keepdim=True)
        mult = sw_sum / (beta.sum(dim=dims, keepdim=True) + self.eps)
        if self.detach_delimeter:
            mult = mult.detach()
        beta = beta * mult
        if self.max_mult > 0:
            beta = torch.clamp_max(beta, self.max_mult)
        loss = -alpha * beta * torch.log(torch.clamp_max(pt + self.eps, 1.0))
        loss = self.weight * loss
        if self.size_average:
            return loss.sum(dim=dims) / (sample_weight.sum(dim=dims) + self.eps)
        return loss.sum(dim=dims)


class SigmoidBinaryCrossEntropyLoss(nn.Module):
    """Per-sample mean binary cross-entropy on logits (or probabilities with ``from_sigmoid``)."""

    def __init__(self, from_sigmoid: bool = False, weight: float = 1.0, ignore_label: int = -1):
        super().__init__()
        self.from_sigmoid, self.weight, self.ignore_label = from_sigmoid, weight, ignore_label

    def forward(self, pred: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
        label = label.view(pred.shape).to(pred.dtype)
        sample_weight = (label != self.ignore_label).to(pred.dtype)
        label = torch.where(sample_weight > 0, label, torch.zeros_like(label))
        if not self.from_sigmoid:
            loss = F.relu(pred) - pred * label + F.softplus(-torch.abs(pred))
        else:
            eps = 1e-12
            loss = -(torch.log(pred + eps) * label + torch.log(1.0 - pred + eps) * (1.0 - label))
        loss = self.weight * (loss * sample_weight)
        return loss.mean(dim=tuple(range(1, pred.dim())))


class ClassBalancedBCELoss(nn.Module):
    """DEXTR's class-balanced cross-entropy: positives and negatives each weighted by the other's share,
    divided by the number of pixels (``size_average``) so that the learning rate is resolution-free."""

    def __init__(self, ignore_label: int = -1):
        super().__init__()
        self.ignore_label = ignore_label

    def forward(self, pred: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
        label = label.view(pred.shape).to(pred.dtype)
        valid = (label != self.ignore_label).to(pred.dtype)
        pos = (label > 0.5).to(pred.dtype) * valid
        neg = valid - pos
        dims = tuple(range(1, pred.dim()))
        n_pos, n_neg = pos.sum(dim=dims), neg.sum(dim=dims)
        n_all = (n_pos + n_neg).clamp_min(1.0)
        loss_pos = (F.softplus(-pred) * pos).sum(dim=dims)
        loss_neg = (F.softplus(pred) * neg).sum(dim=dims)
        return (n_neg / n_all * loss_pos + n_pos / n_all * loss_neg) / n_all
