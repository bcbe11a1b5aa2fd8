"""Backpropagating-refinement predictors: RGB-BRS, DistMap-BRS (input BRS) and f-BRS-A/B/C (feature BRS).

At every click after the first (``optimize_after_n_clicks``) a small set of auxiliary variables is
optimised with L-BFGS-B (``scipy.optimize.fmin_l_bfgs_b``) so that the prediction agrees with all
clicks: a bias map on the normalised image or on the click maps (input BRS), or a per-channel scale and
bias of intermediate features (f-BRS; the network before the insertion point runs once per click, only
the tail runs inside the optimisation). Every click is a constraint of the loss, also those beyond
``net_clicks_limit`` that the network itself no longer sees. With flip the batch holds the image and its
mirror; both halves are optimised together (the variables are shared, mirrored for input BRS).

The semantics are those of RITM / f-BRS (same defaults, loss, optimiser and insertion points).

Speed: when the model's fast inference path is on (``model.set_fast_inference(True)``, the default of
``load_model``; eval mode), every part runs on its BN-folded, channels_last copy (``model.fast_model()``,
see :mod:`isegm.model.fast_inference`): the features before the insertion point (no autograd) and, with
``fast_optimization=True`` (default), also the part inside the optimisation, where the copy's fused
convolutions fall back to the differentiable ``relu(conv(x) [+ residual])`` and its frozen weights get no
gradients. Same function up to float rounding; with the fast path off the plain modules run everywhere.
"""
from __future__ import annotations

import logging
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from scipy.optimize import fmin_l_bfgs_b

from isegm.errors import InputError
from isegm.inference.predictors.base import BasePredictor
from isegm.inference.predictors.brs_functors import BaseOptimizer

logger = logging.getLogger(__name__)


class BRSBasePredictor(BasePredictor):
    """Common part of the BRS predictors: optimised variables that live across clicks of one image.

    Args:
        model: the click model.
        device: torch device of the model.
        opt_functor: the objective (:class:`~isegm.inference.predictors.brs_functors.BaseOptimizer`);
            its ``optimizer_params`` are passed to ``fmin_l_bfgs_b``.
        optimize_after_n_clicks: optimise only when there are more clicks than this.
        fast_optimization: when the model's fast path is on, run the optimised part (with autograd) on
            its fast copy too; False keeps the plain modules there (features are still computed fast).
        **kwargs: passed to :class:`BasePredictor` (``net_clicks_limit``, ``with_flip``, ``zoom_in``, ...).
    """

    def __init__(self, model: torch.nn.Module, device, opt_functor: BaseOptimizer,
                 optimize_after_n_clicks: int = 1, fast_optimization: bool = True, **kwargs):
        super().__init__(model, device, **kwargs)
        self.optimize_after_n_clicks = optimize_after_n_clicks
        self.fast_optimization = fast_optimization
        self.opt_functor = opt_functor
        self.opt_data: Optional[np.ndarray] = None
        self.input_data: Optional[torch.Tensor] = None

    def set_input_image(self, image: np.ndarray) -> None:
        """Set a new image; forgets the optimised variables and cached features."""
        super().set_input_image(image)
        self.opt_data = None
        self.input_data = None

    def reset(self) -> None:
        """Forget clicks-dependent state (transforms, previous prediction, optimised variables)."""
        super().reset()
        self.opt_data = None
        self.input_data = None

    # -- helpers ------------------------------------------------------------------------------------
    def _feature_net(self) -> torch.nn.Module:
        """The network for the parts computed without autograd: the model's fast copy when its fast
        inference path is on and it is in eval mode, else the model itself."""
        net = self.net
        if getattr(net, 'fast_inference', False) and not net.training:
            return net.fast_model()
        return net

    def _optimized_net(self) -> torch.nn.Module:
        """The network for the part run inside the optimisation (with autograd)."""
        return self._feature_net() if self.fast_optimization else self.net

    def _get_clicks_maps_nd(self, clicks_lists: Sequence[Sequence], image_shape: Sequence[int],
                            radius: int = 1) -> Tuple[torch.Tensor, torch.Tensor]:
        """Positive / negative constraint masks ``B x 1 x H x W``: a ``(2r+1)^2`` square at every click
        (all clicks, not only the first ``net_clicks_limit``), in the transformed image's coordinates."""
        height, width = int(image_shape[0]), int(image_shape[1])
        pos = np.zeros((len(clicks_lists), 1, height, width), dtype=np.float32)
        neg = np.zeros_like(pos)
        for i, clicks_list in enumerate(clicks_lists):
            for click in clicks_list:
                y, x = click.coords
                y, x = int(round(y)), int(round(x))
                # clamp the square's start at 0 (a plain slice would wrap around for clicks on row/col 0)
                y1, x1 = max(y - radius, 0), max(x - radius, 0)
                y2, x2 = y + radius + 1, x + radius + 1
                target = pos if click.is_positive else neg
                target[i, 0, y1:y2, x1:x2] = 1.0
        return torch.from_numpy(pos).to(self.device), torch.from_numpy(neg).to(self.device)

    def _batch_size(self, image_nd: torch.Tensor) -> int:
        """Number of distinct images in the batch (the flip half shares their variables)."""
        return image_nd.shape[0] // 2 if self.with_flip else image_nd.shape[0]

    def _net_sees_all_clicks(self, num_clicks: int) -> bool:
        """Whether the network input still holds every click (else cached features can be reused)."""
        return self.net_clicks_limit is None or num_clicks <= self.net_clicks_limit

    def _optimize(self, get_prediction_logits: Callable[..., torch.Tensor], pos_mask: torch.Tensor,
                  neg_mask: torch.Tensor, num_clicks: int, shape: Optional[Sequence[int]] = None
                  ) -> torch.Tensor:
        """Run L-BFGS-B from ``self.opt_data`` (when there are enough clicks) and return the logits of the
        best point seen, or of ``self.opt_data`` when no optimisation ran."""
        self.opt_functor.init_click(get_prediction_logits, pos_mask, neg_mask, self.device, shape=shape)
        if num_clicks > self.optimize_after_n_clicks:
            x_opt, f_opt, info = fmin_l_bfgs_b(func=self.opt_functor, x0=self.opt_data.ravel(),
                                               **self.opt_functor.optimizer_params)
            self.opt_data = x_opt.reshape(self.opt_data.shape)
            logger.debug('BRS: %d evaluations, loss %.5f, %s', info.get('funcalls', -1), f_opt,
                         info.get('task', ''))

        with torch.no_grad():
            if self.opt_functor.best_prediction is not None:
                return self.opt_functor.best_prediction
            opt_nd = torch.from_numpy(np.ascontiguousarray(self.opt_data.ravel())).float().to(self.device)
            opt_vars, _ = self.opt_functor.unpack_opt_params(opt_nd)
            return get_prediction_logits(*opt_vars)

    def _encode_input(self, net: torch.nn.Module, image_nd: torch.Tensor, points_nd: torch.Tensor
                      ) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        """First layers of ``net``: ``(x, coord_features)`` as ``backbone_forward`` takes them."""
        image, prev_mask = net.prepare_input(image_nd)
        coord_features = net.get_coord_features(image, prev_mask, points_nd)
        return _fuse_clicks(net, image, coord_features)

    # -- state for undo -------------------------------------------------------------------------------
    def get_states(self) -> Dict:
        """Transform states, previous prediction and the optimised variables (for GUI undo)."""
        states = dict(super().get_states())
        states['opt_data'] = None if self.opt_data is None else self.opt_data.copy()
        states['input_data'] = self.input_data
        return states

    def set_states(self, states: Dict) -> None:
        super().set_states(states)
        opt_data = states.get('opt_data')
        self.opt_data = None if opt_data is None else np.array(opt_data, copy=True)
        self.input_data = states.get('input_data')


class InputBRSPredictor(BRSBasePredictor):
    """RGB-BRS (``optimize_target='rgb'``: a bias added to the normalised image) and DistMap-BRS
    (``'dmaps'``: a bias added to the click maps, not to the previous-mask channel). ``'all'`` adds the
    bias to the output of ``rgb_conv`` (models with ``use_rgb_conv`` only). The bias persists across
    clicks and is reset when the (zoomed) image changes."""

    TARGETS = ('rgb', 'dmaps', 'all')

    def __init__(self, model: torch.nn.Module, device, opt_functor: BaseOptimizer,
                 optimize_target: str = 'rgb', **kwargs):
        if optimize_target not in self.TARGETS:
            raise InputError(f'Unknown optimize_target {optimize_target!r}; use one of {self.TARGETS}.')
        if optimize_target == 'all' and getattr(model, 'rgb_conv', None) is None:
            raise InputError("optimize_target='all' needs a model with rgb_conv; use 'rgb' or 'dmaps'.")
        super().__init__(model, device, opt_functor=opt_functor, **kwargs)
        self.optimize_target = optimize_target

    def _opt_channels(self) -> int:
        if self.optimize_target == 'dmaps':
            return self.net.coord_feature_ch - 1 if self.net.with_prev_mask else self.net.coord_feature_ch
        return 3

    def _get_prediction(self, image_nd: torch.Tensor, clicks_lists: List[list],
                        is_image_changed: bool) -> torch.Tensor:
        points_nd = self.get_points_nd(clicks_lists)
        pos_mask, neg_mask = self._get_clicks_maps_nd(clicks_lists, image_nd.shape[2:])
        num_clicks = len(clicks_lists[0])

        shape = (self._batch_size(image_nd), self._opt_channels(), image_nd.shape[2], image_nd.shape[3])
        if self.opt_data is None or is_image_changed or tuple(self.opt_data.shape) != shape:
            self.opt_data = np.zeros(shape, dtype=np.float32)

        feature_net, optimized_net = self._feature_net(), self._optimized_net()
        with torch.no_grad():  # these do not depend on the optimised bias
            image, prev_mask = feature_net.prepare_input(image_nd)
            dmaps = feature_net.get_coord_features(image, prev_mask, points_nd)
        target = self.optimize_target

        def get_prediction_logits(opt_bias: torch.Tensor) -> torch.Tensor:
            net = optimized_net if torch.is_grad_enabled() else feature_net
            input_image, maps = image, dmaps
            if target == 'rgb':
                input_image = input_image + opt_bias
            elif target == 'dmaps':
                if net.with_prev_mask:
                    maps = torch.cat((maps[:, :1], maps[:, 1:] + opt_bias), dim=1)
                else:
                    maps = maps + opt_bias

            x, coord_features = _fuse_clicks(net, input_image, maps)
            if target == 'all':
                x = x + opt_bias

            logits = net.backbone_forward(x, coord_features)['instances']
            return F.interpolate(logits, size=image_nd.shape[2:], mode='bilinear', align_corners=True)

        return self._optimize(get_prediction_logits, pos_mask, neg_mask, num_clicks, shape=shape)


class _ScaleBiasBRSPredictor(BRSBasePredictor):
    """f-BRS template: per-channel scale and bias on features cached at an insertion point
    (``_get_head_input``), optimised through the rest of the network (``_run_head``)."""

    num_channels: int

    def _get_head_input(self, image_nd: torch.Tensor, points_nd: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _run_head(self, net: torch.nn.Module, feats: torch.Tensor) -> torch.Tensor:
        """Logits (at the network's output stride) from the scaled and shifted insertion features."""
        raise NotImplementedError

    def _get_prediction(self, image_nd: torch.Tensor, clicks_lists: List[list],
                        is_image_changed: bool) -> torch.Tensor:
        points_nd = self.get_points_nd(clicks_lists)
        pos_mask, neg_mask = self._get_clicks_maps_nd(clicks_lists, image_nd.shape[2:])
        num_clicks = len(clicks_lists[0])
        bs = self._batch_size(image_nd)

        if self.opt_data is None or self.opt_data.shape[0] // (2 * self.num_channels) != bs:
            self.opt_data = np.zeros(bs * 2 * self.num_channels, dtype=np.float32)
        if self._net_sees_all_clicks(num_clicks) or is_image_changed or self.input_data is None:
            self.input_data = self._get_head_input(image_nd, points_nd)

        feature_net, optimized_net = self._feature_net(), self._optimized_net()

        def get_prediction_logits(scale: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
            net = optimized_net if torch.is_grad_enabled() else feature_net
            feats = _scale_and_shift(self.input_data, scale, bias, bs, self.with_flip)
            logits = self._run_head(net, feats)
            return F.interpolate(logits, size=image_nd.shape[2:], mode='bilinear', align_corners=True)

        return self._optimize(get_prediction_logits, pos_mask, neg_mask, num_clicks)


class FeatureBRSPredictor(_ScaleBiasBRSPredictor):
    """f-BRS for DeepLab-v3+ models: scale and bias of the features

    * ``'after_c4'`` (f-BRS-A): backbone output c4, before ASPP (``aspp_in_channels`` channels);
    * ``'after_aspp'`` (f-BRS-B): ASPP output joined with the projected skip features (``ch + 32``);
    * ``'after_deeplab'`` (f-BRS-C): DeepLab head output, before the segmentation head (``ch``).

    The features before the insertion point are computed once per click while the network still sees
    every click (``num_clicks <= net_clicks_limit``), afterwards reused until the image changes.
    """

    MODES = ('after_c4', 'after_aspp', 'after_deeplab')

    def __init__(self, model: torch.nn.Module, device, opt_functor: BaseOptimizer,
                 insertion_mode: str = 'after_deeplab', **kwargs):
        super().__init__(model, device, opt_functor=opt_functor, **kwargs)
        self.insertion_mode = insertion_mode
        self._c1_features: Optional[torch.Tensor] = None
        extractor = model.feature_extractor
        if insertion_mode == 'after_deeplab':
            self.num_channels = extractor.ch
        elif insertion_mode == 'after_c4':
            self.num_channels = extractor.aspp_in_channels
        elif insertion_mode == 'after_aspp':
            self.num_channels = extractor.ch + 32
        else:
            raise InputError(f'Unknown f-BRS insertion mode {insertion_mode!r} for DeepLab; '
                             f'use one of {self.MODES}.')

    def get_states(self) -> Dict:
        states = super().get_states()
        states['c1_features'] = self._c1_features
        return states

    def set_states(self, states: Dict) -> None:
        super().set_states(states)
        self._c1_features = states.get('c1_features')

    def _run_head(self, net: torch.nn.Module, feats: torch.Tensor) -> torch.Tensor:
        fe = net.feature_extractor
        if self.insertion_mode == 'after_c4':
            x = fe.aspp(feats)
            x = F.interpolate(x, size=self._c1_features.shape[2:], mode='bilinear', align_corners=True)
            feats = fe.head(torch.cat((x, self._c1_features), dim=1))
        elif self.insertion_mode == 'after_aspp':
            feats = fe.head(feats)
        return net.head(feats)

    def _get_head_input(self, image_nd: torch.Tensor, points_nd: torch.Tensor) -> torch.Tensor:
        net = self._feature_net()
        fe = net.feature_extractor
        with torch.no_grad():
            x, additional_features = self._encode_input(net, image_nd, points_nd)
            if self.insertion_mode == 'after_deeplab':
                return fe(x, additional_features)[0]
            c1, _, _, c4 = fe.backbone(x, additional_features)
            c1 = fe.skip_project(c1)
            if self.insertion_mode == 'after_c4':
                self._c1_features = c1
                return c4
            x = fe.aspp(c4)
            x = F.interpolate(x, size=c1.shape[2:], mode='bilinear', align_corners=True)
            return torch.cat((x, c1), dim=1)


class HRNetFeatureBRSPredictor(_ScaleBiasBRSPredictor):
    """f-BRS for HRNet(+OCR) models: scale and bias of

    * ``'A'`` (f-BRS-A and -B): the concatenated HRNet branch features (``15 * width`` channels), the OCR
      block and the classifier run inside the optimisation;
    * ``'C'`` (f-BRS-C): the OCR output (``2 * ocr_width`` channels), only the classifier runs inside.
    """

    MODES = ('A', 'C')

    def __init__(self, model: torch.nn.Module, device, opt_functor: BaseOptimizer,
                 insertion_mode: str = 'A', **kwargs):
        super().__init__(model, device, opt_functor=opt_functor, **kwargs)
        self.insertion_mode = insertion_mode
        extractor = model.feature_extractor
        if insertion_mode == 'A':
            self.num_channels = sum(k * extractor.width for k in (1, 2, 4, 8))
        elif insertion_mode == 'C':
            if extractor.ocr_width <= 0:
                raise InputError('f-BRS-C needs an HRNet model with an OCR block (ocr_width > 0); '
                                 'use f-BRS-A or f-BRS-B.')
            self.num_channels = 2 * extractor.ocr_width
        else:
            raise InputError(f'Unknown f-BRS insertion mode {insertion_mode!r} for HRNet; '
                             f'use one of {self.MODES}.')

    def _run_head(self, net: torch.nn.Module, feats: torch.Tensor) -> torch.Tensor:
        fe = net.feature_extractor
        if self.insertion_mode == 'A' and fe.ocr_width > 0:
            out_aux = fe.aux_head(feats)
            feats = fe.conv3x3_ocr(feats)
            context = fe.ocr_gather_head(feats, out_aux)
            feats = fe.ocr_distri_head(feats, context)
        return fe.cls_head(feats)

    def _get_head_input(self, image_nd: torch.Tensor, points_nd: torch.Tensor) -> torch.Tensor:
        net = self._feature_net()
        fe = net.feature_extractor
        with torch.no_grad():
            x, additional_features = self._encode_input(net, image_nd, points_nd)
            feats = fe.compute_hrnet_feats(x, additional_features)
            if self.insertion_mode == 'A':
                return feats
            out_aux = fe.aux_head(feats)
            feats = fe.conv3x3_ocr(feats)
            context = fe.ocr_gather_head(feats, out_aux)
            return fe.ocr_distri_head(feats, context)


def _scale_and_shift(features: torch.Tensor, scale: torch.Tensor, bias: torch.Tensor, bs: int,
                     with_flip: bool) -> torch.Tensor:
    """``features * scale + bias`` with per-image, per-channel ``scale``/``bias`` (shared by the flip half)."""
    scale = scale.view(bs, -1, 1, 1)
    bias = bias.view(bs, -1, 1, 1)
    if with_flip:
        scale = scale.repeat(2, 1, 1, 1)
        bias = bias.repeat(2, 1, 1, 1)
    return features * scale + bias


def _fuse_clicks(net: torch.nn.Module, image: torch.Tensor, coord_features: torch.Tensor
                 ) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
    """The model's first step, ``(x, coord_features)`` as ``backbone_forward`` takes them: ``rgb_conv`` on
    image + click maps, or the image plus ``maps_transform(click maps)`` (RITM), or the model's own
    ``fuse_clicks`` (f-BRS models without ``rgb_conv``)."""
    if net.rgb_conv is not None:
        return net.rgb_conv(torch.cat((image, coord_features), dim=1)), None
    if getattr(net, 'maps_transform', None) is not None:
        return image, net.maps_transform(coord_features)
    return net.fuse_clicks(image, coord_features), None
