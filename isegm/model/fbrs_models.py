"""Click models in the layout of the official f-BRS checkpoints (bare state_dicts, no config).

f-BRS (Sofiiuk et al., CVPR 2020) models differ from RITM's :class:`~isegm.model.is_model.ISModel`:
the click maps are always tanh-normalised distance maps (``norm_radius=260``), there is no previous-mask
input, and they are fused with the image by an ``rgb_conv`` whose layers are ordered
conv1x1 -> LeakyReLU(0.2) -> BN -> conv1x1. The reference code normalises the image outside the
network; here, as for every isegm click model, ``forward`` takes the [0, 1] RGB image and normalises
it inside, so predictors treat all click models alike.

Each family has its own class and its own ``*_params_from_fbrs_state_dict`` detection function (the
rules of the reference evaluation loader, ``load_is_model(..., backbone='auto')``).
"""
from __future__ import annotations

from typing import Dict, Mapping, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from isegm.errors import CheckpointError
from isegm.model.fast_inference import FastInferenceMixin
from isegm.model.is_model import IMAGENET_MEAN_STD
from isegm.model.is_deeplab_model import DeeplabNetwork
from isegm.model.modeling.hrnet_ocr import HighResolutionNet
from isegm.model.ops import BatchImageNormalize, DistMaps
from isegm.utils.serialization import serialize


# ------------------------------------------------------------------------------------------------------
# What every f-BRS click model shares: normalisation, distance maps, rgb_conv fusion
# ------------------------------------------------------------------------------------------------------
class _FBRSClickInput(FastInferenceMixin, nn.Module):
    """Click inputs of the f-BRS models: ImageNet normalisation inside the model, ``[positive, negative]``
    distance maps (``tanh(2 d / norm_radius)``), and f-BRS's ``rgb_conv`` (conv 1x1 -> LeakyReLU(0.2) -> BN
    -> conv 1x1, an order different from RITM's). Subclasses build the network after calling
    :meth:`_init_click_input` (the registration order is the reference state-dict order) and implement
    ``backbone_forward``; ``forward`` returns ``{'instances'}`` (+ ``'instances_aux'``) at input size."""

    def _init_click_input(self, norm_radius: float, use_rgb_conv: bool, cpu_dist_maps: bool, norm_layer,
                          norm_mean_std, with_aux_output: bool = False) -> None:
        self.with_aux_output = with_aux_output
        self.with_prev_mask = False
        self.binary_prev_mask = False
        self.clicks_groups = None
        self.coord_feature_ch = 2
        self.normalization = BatchImageNormalize(norm_mean_std[0], norm_mean_std[1])
        self.maps_transform: Optional[nn.Module] = None
        self.rgb_conv: Optional[nn.Module] = None
        if use_rgb_conv:
            self.rgb_conv = nn.Sequential(
                nn.Conv2d(3 + self.coord_feature_ch, 8, kernel_size=1),
                nn.LeakyReLU(negative_slope=0.2),
                norm_layer(8),
                nn.Conv2d(8, 3, kernel_size=1))
        self.dist_maps = DistMaps(norm_radius=norm_radius, spatial_scale=1.0, cpu_mode=cpu_dist_maps,
                                  use_disks=False)

    def prepare_input(self, x: torch.Tensor) -> Tuple[torch.Tensor, None]:
        """Normalise the [0, 1] image with the ImageNet mean/std; f-BRS models take no previous mask."""
        return self.normalization(x[:, :3]), None

    def get_coord_features(self, image: torch.Tensor, prev_mask: Optional[torch.Tensor],
                           points: torch.Tensor) -> torch.Tensor:
        """``B x 2 x H x W`` distance maps ``[positive, negative]`` (``prev_mask`` is ignored)."""
        return self.dist_maps(image, points)

    def fuse_clicks(self, image: torch.Tensor, coord_features: torch.Tensor) -> torch.Tensor:
        """Network input from the normalised image and click maps: ``rgb_conv``, or without it the
        reference's fallback ``0.8 * image * [pos, neg, 1] + 0.2 * image``."""
        if self.rgb_conv is not None:
            return self.rgb_conv(torch.cat((image, coord_features), dim=1))
        gates = torch.cat((coord_features, torch.ones_like(coord_features[:, :1])), dim=1)
        return 0.8 * image * gates + 0.2 * image

    def backbone_forward(self, image: torch.Tensor, coord_features: Optional[torch.Tensor] = None
                         ) -> Dict[str, Optional[torch.Tensor]]:
        raise NotImplementedError

    def forward(self, x: torch.Tensor, points: torch.Tensor) -> Dict[str, torch.Tensor]:
        fast = self._fast_forward(x, points)   # folded copy, when enabled (eval, no autograd)
        if fast is not None:
            return fast
        image, _ = self.prepare_input(x)
        coord_features = self.get_coord_features(image, None, points)
        outputs = self.backbone_forward(self.fuse_clicks(image, coord_features))
        size = image.shape[2:]
        result = {'instances': F.interpolate(outputs['instances'], size=size, mode='bilinear',
                                             align_corners=True)}
        if self.with_aux_output and outputs.get('instances_aux') is not None:
            result['instances_aux'] = F.interpolate(outputs['instances_aux'], size=size, mode='bilinear',
                                                    align_corners=True)
        return result


# ------------------------------------------------------------------------------------------------------
# f-BRS HRNet + OCR
# ------------------------------------------------------------------------------------------------------
class FBRSHRNetModel(_FBRSClickInput):
    """f-BRS HRNetV2 + OCR click model (``hrnet18_ocr64_sbd.pth``, ``hrnet32_ocr128_sbd.pth``, ...).

    ``forward(x, points)``: ``x`` is ``B x 3 x H x W`` RGB in [0, 1]; ``points`` is ``B x 2N x 2``
    (f-BRS: ``(y, x)`` rows, positives then negatives, ``-1`` padding) or RITM's ``B x 2N x 3`` (the order
    column is ignored). Returns ``{'instances': logits B x 1 x H x W}`` (plus ``'instances_aux'`` when
    ``with_aux_output``). The official checkpoints were trained with the aux head, which OCR still uses
    inside; the reference evaluation builds them with ``with_aux_output=False``.

    It offers the same surface as :class:`~isegm.model.is_model.ISModel` to the predictors:
    ``with_prev_mask`` (False), ``coord_feature_ch``, ``prepare_input``, ``get_coord_features``,
    ``rgb_conv``, ``maps_transform`` (None), ``backbone_forward`` and ``feature_extractor``.
    """
    _config_class_path = 'isegm.model.fbrs_models.FBRSHRNetModel'

    @serialize
    def __init__(self, width: int = 48, ocr_width: int = 256, small: bool = False, norm_radius: float = 260,
                 use_rgb_conv: bool = True, with_aux_output: bool = False, cpu_dist_maps: bool = False,
                 norm_layer=nn.BatchNorm2d, norm_mean_std=IMAGENET_MEAN_STD):
        super().__init__()
        self._init_click_input(norm_radius, use_rgb_conv, cpu_dist_maps, norm_layer, norm_mean_std,
                               with_aux_output=with_aux_output)
        self.feature_extractor = HighResolutionNet(width=width, ocr_width=ocr_width, small=small,
                                                   num_classes=1, norm_layer=norm_layer)

    def backbone_forward(self, image: torch.Tensor, coord_features: Optional[torch.Tensor] = None
                         ) -> Dict[str, Optional[torch.Tensor]]:
        """Run HRNet+OCR on the fused input; logits at stride 4."""
        out, out_aux = self.feature_extractor(image, coord_features)
        return {'instances': out, 'instances_aux': out_aux}


def hrnet_params_from_fbrs_state_dict(sd: Mapping[str, torch.Tensor]) -> Dict[str, object]:
    """Constructor arguments of :class:`FBRSHRNetModel` for an f-BRS HRNet state_dict.

    The reference loader's rules: ``width`` = out-channels of ``stage2.0.branches.0.0.conv1.weight``;
    ``ocr_width`` = length of ``object_context_block.f_down.1.0.bias`` (0 without OCR);
    ``small`` = fewer than 1800 keys containing ``feature_extractor.``. Files written without
    ``num_batches_tracked`` counters (PyTorch < 0.4.1) are counted as if they had them, as PyTorch
    fills them in on load. The other arguments keep the reference defaults (distance maps with
    radius 260, ``rgb_conv``, no aux output). Raises :class:`CheckpointError` if ``sd`` is no f-BRS HRNet.
    """
    keys = list(sd.keys())
    width_keys = [k for k in keys if 'stage2.0.branches.0.0.conv1.weight' in k]
    if not width_keys:
        raise CheckpointError('this state_dict is not an f-BRS HRNet: it has no '
                              '"feature_extractor.stage2.0.branches.0.0.conv1.weight"; check the file.')
    width = int(sd[width_keys[0]].shape[0])

    ocr_keys = [k for k in keys if 'object_context_block.f_down.1.0.bias' in k]
    ocr_width = int(sd[ocr_keys[0]].shape[0]) if ocr_keys else 0

    fe_keys = [k for k in keys if 'feature_extractor.' in k]
    num_fe_keys = len(fe_keys)
    if not any(k.endswith('num_batches_tracked') for k in fe_keys):
        num_fe_keys += sum(k.endswith('running_mean') for k in fe_keys)
    return {'width': width, 'ocr_width': ocr_width, 'small': num_fe_keys < 1800}


# ------------------------------------------------------------------------------------------------------
# f-BRS DeepLabV3+ (ResNet-34/50/101)
# ------------------------------------------------------------------------------------------------------
class FBRSDeeplabModel(DeeplabNetwork, _FBRSClickInput):
    """f-BRS DeepLabV3+ click model (``resnet34_dh128_sbd.pth``, ``resnet50_dh128_sbd.pth``, ...).

    The reference ``get_deeplab_model(backbone, deeplab_ch, aspp_dropout)``: ``rgb_conv`` fuses the image
    with the distance maps, then ``feature_extractor`` (:class:`DeepLabV3Plus`: ``backbone``,
    ``skip_project``, ``aspp``, ``head``) and the separable-conv ``head`` (``deeplab_ch // 2`` channels)
    give logits at stride 4. ``forward(x, points)``: ``x`` is ``B x 3 x H x W`` RGB in [0, 1]; ``points`` is
    ``B x 2N x 2`` (f-BRS) or ``B x 2N x 3`` (RITM; the order column is ignored). Returns
    ``{'instances': logits B x 1 x H x W}``. Same predictor surface as :class:`FBRSHRNetModel`.
    """
    _config_class_path = 'isegm.model.fbrs_models.FBRSDeeplabModel'

    @serialize
    def __init__(self, backbone: str = 'resnet50', deeplab_ch: int = 256, aspp_dropout: float = 0.5,
                 norm_layer=nn.BatchNorm2d, backbone_norm_layer=None, use_rgb_conv: bool = True,
                 cpu_dist_maps: bool = False, norm_radius: float = 260, backbone_lr_mult: float = 0.1,
                 norm_mean_std=IMAGENET_MEAN_STD):
        super().__init__()
        # Registration order = the reference state-dict order: rgb_conv, feature_extractor, head.
        self._init_click_input(norm_radius, use_rgb_conv, cpu_dist_maps, norm_layer, norm_mean_std)
        self._build_deeplab(backbone, deeplab_ch, aspp_dropout, norm_layer, backbone_norm_layer, backbone_lr_mult)


# Upper bounds of the backbone key count (``num_batches_tracked`` excluded) in the reference loader.
_FBRS_BACKBONE_KEY_LIMITS = (('resnet34', 181), ('resnet50', 276), ('resnet101', 531))


def deeplab_params_from_fbrs_state_dict(sd: Mapping[str, torch.Tensor]) -> Dict[str, object]:
    """Constructor arguments (``backbone``, ``deeplab_ch``, ``aspp_dropout``) of :class:`FBRSDeeplabModel`
    for an f-BRS DeepLab state_dict, by the reference loader's rules.

    ``backbone`` from the number of keys containing ``feature_extractor.backbone`` (counters excluded):
    <= 181 resnet34, <= 276 resnet50, <= 531 resnet101. ``deeplab_ch`` = out-channels of
    ``aspp.project.0.weight``; dropout 0.5 when it is 256, else 0.2. A top-level ``aspp_dropout`` entry
    overrides the dropout and, as in the reference, leaves ``deeplab_ch`` at 128 (that entry is no
    network tensor: drop it before ``load_state_dict``). Raises :class:`CheckpointError` for other dicts.
    """
    num_backbone = sum(1 for k in sd if 'feature_extractor.backbone' in k and 'num_batches_tracked' not in k)
    if num_backbone == 0:
        raise CheckpointError('this state_dict is not an f-BRS DeepLab: it has no "feature_extractor.backbone" '
                              'keys; check the file.')
    backbone = next((name for name, limit in _FBRS_BACKBONE_KEY_LIMITS if num_backbone <= limit), None)
    if backbone is None:
        raise CheckpointError(f'f-BRS DeepLab state_dict with {num_backbone} backbone tensors: more than any '
                              'known ResNet (34/50/101); the file belongs to another architecture.')
    deeplab_ch, aspp_dropout = 128, 0.2
    if 'aspp_dropout' in sd:
        aspp_dropout = float(torch.as_tensor(sd['aspp_dropout']).reshape(-1)[0])
    else:
        project = [v for k, v in sd.items() if 'aspp.project.0.weight' in k]
        if not project:
            raise CheckpointError('f-BRS DeepLab state_dict without "feature_extractor.aspp.project.0.weight"; '
                                  'the file is incomplete or of another architecture.')
        deeplab_ch = int(project[0].shape[0])
        if deeplab_ch == 256:
            aspp_dropout = 0.5
    return {'backbone': backbone, 'deeplab_ch': deeplab_ch, 'aspp_dropout': aspp_dropout}
