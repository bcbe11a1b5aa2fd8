"""Objective functions of the BRS predictors, in the form ``scipy.optimize.fmin_l_bfgs_b`` calls.

A functor is called with the flat float64 vector of optimised variables and returns ``(loss, grad)``
(``float`` and float64 array of the same size). Each call runs the network tail with autograd, keeps the
logits of the lowest loss seen (``best_prediction``) and returns a zero gradient, which ends L-BFGS-B,
once every click is satisfied or the thresholded mask stops changing (IoU to the previous call above
``1 - min_iou_diff``).

The gradient is taken with respect to the optimised variables only (``torch.autograd.grad``): the
network's weight gradients, which ``loss.backward()`` would also compute (and accumulate into the
model's ``.grad``), are never needed, which saves about half of every backward pass. A call at the same
point as the previous one (L-BFGS-B may re-evaluate it) returns the stored result without a network run.
"""
from __future__ import annotations

from typing import Callable, Dict, Optional, Sequence, Tuple

import numpy as np
import torch

from isegm.inference.predictors.brs_losses import BRSMaskLoss


def batch_iou(mask_a: torch.Tensor, mask_b: torch.Tensor) -> np.ndarray:
    """IoU per batch item of two boolean tensors; items whose union is empty are left out."""
    dims = list(range(1, mask_b.dim()))
    union = torch.mean((mask_a | mask_b).float(), dim=dims).detach().cpu().numpy()
    intersection = torch.mean((mask_a & mask_b).float(), dim=dims).detach().cpu().numpy()
    nonzero = union > 0
    return intersection[nonzero] / union[nonzero]


class BaseOptimizer:
    """Shared part of the BRS objectives; subclasses say how the flat vector maps to network inputs.

    Args:
        optimizer_params: keyword arguments for ``fmin_l_bfgs_b`` (``m``, ``factr``, ``pgtol``, ``maxfun``,
            ``maxiter``); the predictor passes them on.
        prob_thresh: probability threshold of a click being satisfied and of the mask.
        reg_weight: weight of the L2 regulariser of the optimised variables.
        min_iou_diff: stop when the mask changes less than this (1 - IoU); 0 disables the check.
        brs_loss: the click loss, :class:`BRSMaskLoss` by default.
        with_flip: the batch holds the image and its mirror (``AddHorizontalFlip``).
        flip_average: average the two halves before the loss instead of taking it over both.
    """

    def __init__(self, optimizer_params: Dict, prob_thresh: float = 0.49, reg_weight: float = 1e-3,
                 min_iou_diff: float = 0.01, brs_loss: Optional[torch.nn.Module] = None,
                 with_flip: bool = False, flip_average: bool = False, **kwargs):
        self.brs_loss = brs_loss if brs_loss is not None else BRSMaskLoss()
        self.optimizer_params = optimizer_params
        self.prob_thresh = prob_thresh
        self.reg_weight = reg_weight
        self.min_iou_diff = min_iou_diff
        self.with_flip = with_flip
        self.flip_average = flip_average

        self.best_prediction: Optional[torch.Tensor] = None
        self._get_prediction_logits: Optional[Callable[..., torch.Tensor]] = None
        self._opt_shape: Optional[Sequence[int]] = None
        self._best_loss: Optional[float] = None
        self._click_masks: Optional[Tuple[torch.Tensor, torch.Tensor]] = None
        self._last_mask: Optional[torch.Tensor] = None
        self.num_calls = 0
        self.device: Optional[torch.device] = None

    def init_click(self, get_prediction_logits: Callable[..., torch.Tensor], pos_mask: torch.Tensor,
                   neg_mask: torch.Tensor, device, shape: Optional[Sequence[int]] = None) -> None:
        """Prepare for one click: the network tail to call, the click masks (``B x 1 x H x W``) and, for
        input BRS, the shape of the optimised tensor."""
        self.best_prediction = None
        self._best_loss = None
        self._get_prediction_logits = get_prediction_logits
        self._click_masks = (pos_mask, neg_mask)
        self._opt_shape = shape
        self._last_mask = None
        self.num_calls = 0
        self.device = device

    def __call__(self, x: np.ndarray) -> Tuple[float, np.ndarray]:
        x = np.asarray(x)
        self.num_calls += 1
        opt_params = torch.from_numpy(x).to(device=self.device, dtype=torch.float32)
        opt_params.requires_grad_(True)

        with torch.enable_grad():
            opt_vars, reg_loss = self.unpack_opt_params(opt_params)
            logits = self._get_prediction_logits(*opt_vars)
            result = torch.sigmoid(logits)

            pos_mask, neg_mask = self._click_masks
            if self.with_flip and self.flip_average:
                result, result_flipped = torch.chunk(result, 2, dim=0)
                result = 0.5 * (result + torch.flip(result_flipped, dims=[3]))
                pos_mask, neg_mask = pos_mask[:result.shape[0]], neg_mask[:result.shape[0]]

            loss, f_max_pos, f_max_neg = self.brs_loss(result, pos_mask, neg_mask)
            loss = loss + reg_loss

        f_val = float(loss.item())
        if self.best_prediction is None or f_val < self._best_loss:
            self.best_prediction = logits.detach()
            self._best_loss = f_val

        zero_grad = np.zeros(x.shape, dtype=np.float64)
        if f_max_pos < (1 - self.prob_thresh) and f_max_neg < self.prob_thresh:
            return f_val, zero_grad

        current_mask = result.detach() > self.prob_thresh
        if self._last_mask is not None and self.min_iou_diff > 0:
            diff_iou = batch_iou(current_mask, self._last_mask)
            if len(diff_iou) > 0 and diff_iou.mean() > 1 - self.min_iou_diff:
                return f_val, zero_grad
        self._last_mask = current_mask

        # only d loss / d variables: no weight gradients, nothing accumulated in the model's .grad
        (grad,) = torch.autograd.grad(loss, opt_params)
        f_grad = grad.detach().cpu().numpy().ravel().astype(np.float64)
        return f_val, f_grad

    def unpack_opt_params(self, opt_params: torch.Tensor) -> Tuple[Tuple[torch.Tensor, ...], torch.Tensor]:
        """Map the flat variables to the arguments of ``get_prediction_logits`` and the regulariser."""
        raise NotImplementedError


class InputOptimizer(BaseOptimizer):
    """RGB-BRS / DistMap-BRS: one additive bias map ``B x C x H x W`` on the image or the click maps.

    With flip the mirrored half of the batch gets the mirrored bias.
    """

    def unpack_opt_params(self, opt_params: torch.Tensor) -> Tuple[Tuple[torch.Tensor, ...], torch.Tensor]:
        opt_params = opt_params.view(self._opt_shape)
        if self.with_flip:
            opt_params = torch.cat([opt_params, torch.flip(opt_params, dims=[3])], dim=0)
        reg_loss = self.reg_weight * torch.sum(opt_params ** 2)
        return (opt_params,), reg_loss


class ScaleBiasOptimizer(BaseOptimizer):
    """f-BRS: a per-channel scale and bias of intermediate features; the flat vector is
    ``[scale (B*C), bias (B*C)]``, the features are multiplied by ``1 + act(scale)`` and shifted by bias.

    Args:
        scale_act: None, ``'tanh'`` or ``'sin'`` applied to the scale variables.
        reg_bias_weight: extra weight of the bias in the regulariser.
    """

    def __init__(self, *args, scale_act: Optional[str] = None, reg_bias_weight: float = 10.0, **kwargs):
        super().__init__(*args, **kwargs)
        self.scale_act = scale_act
        self.reg_bias_weight = reg_bias_weight

    def unpack_opt_params(self, opt_params: torch.Tensor) -> Tuple[Tuple[torch.Tensor, ...], torch.Tensor]:
        scale, bias = torch.chunk(opt_params, 2, dim=0)
        reg_loss = self.reg_weight * (torch.sum(scale ** 2) + self.reg_bias_weight * torch.sum(bias ** 2))
        if self.scale_act == 'tanh':
            scale = torch.tanh(scale)
        elif self.scale_act == 'sin':
            scale = torch.sin(scale)
        return (1 + scale, bias), reg_loss
