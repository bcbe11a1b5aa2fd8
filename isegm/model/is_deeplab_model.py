"""RITM's DeepLabV3+ click model (``isegm.model.is_deeplab_model.DeeplabModel`` in RITM checkpoints)."""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Dict, List, Mapping, Optional, Union

import torch
from torch import nn

from isegm.model.is_model import ISModel
from isegm.model.modeling.basic_blocks import SepConvHead
from isegm.model.modeling.deeplab_v3 import DeepLabV3Plus
from isegm.model.ops import LRMult
from isegm.utils.serialization import serialize


class DeeplabNetwork:
    """The DeepLabV3+ part shared by RITM's :class:`DeeplabModel` and f-BRS's ``FBRSDeeplabModel``:
    ``feature_extractor`` (backbone at ``backbone_lr_mult``, ASPP, decoder) and the separable-conv ``head``
    (``deeplab_ch // 2`` channels, 2 layers); logits at stride 4."""

    def _build_deeplab(self, backbone: str, deeplab_ch: int, aspp_dropout: float, norm_layer,
                       backbone_norm_layer, backbone_lr_mult: float) -> None:
        self.feature_extractor = DeepLabV3Plus(backbone=backbone, ch=deeplab_ch, project_dropout=aspp_dropout,
                                               norm_layer=norm_layer, backbone_norm_layer=backbone_norm_layer)
        self.feature_extractor.backbone.apply(LRMult(backbone_lr_mult))
        self.head = SepConvHead(1, in_channels=deeplab_ch, mid_channels=deeplab_ch // 2, num_layers=2,
                                norm_layer=norm_layer)

    def backbone_forward(self, image: torch.Tensor, coord_features: Optional[torch.Tensor] = None
                         ) -> Dict[str, torch.Tensor]:
        """DeepLabV3+ and the head on the (fused) input; logits at stride 4."""
        features = self.feature_extractor(image, coord_features)[0]
        return {'instances': self.head(features)}

    def load_pretrained_weights(self, source: Union[None, str, Path, Mapping[str, torch.Tensor]] = None
                                ) -> List[str]:
        """Initialise the ResNet backbone with ImageNet weights (path, state_dict, or ``None`` to download)."""
        return self.feature_extractor.load_pretrained_weights(source)


class DeeplabModel(DeeplabNetwork, ISModel):
    """DeepLabV3+ (ResNet-34/50/101) with a separable-conv head producing ``'instances'`` at stride 4.

    Click maps enter through ``maps_transform`` (added after the backbone stem) or, with
    ``use_rgb_conv=True``, through ``rgb_conv``; see :class:`ISModel` for the input/output contract.
    """
    _config_class_path = 'isegm.model.is_deeplab_model.DeeplabModel'

    @serialize
    def __init__(self, backbone: str = 'resnet50', deeplab_ch: int = 256, aspp_dropout: float = 0.5,
                 backbone_norm_layer: Optional[Callable[[int], nn.Module]] = None, backbone_lr_mult: float = 0.1,
                 norm_layer: Callable[[int], nn.Module] = nn.BatchNorm2d, **kwargs):
        super().__init__(norm_layer=norm_layer, **kwargs)
        self._build_deeplab(backbone, deeplab_ch, aspp_dropout, norm_layer, backbone_norm_layer, backbone_lr_mult)
