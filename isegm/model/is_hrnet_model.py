"""RITM's HRNet+OCR click model (``isegm.model.is_hrnet_model.HRNetModel`` in RITM checkpoints)."""
from __future__ import annotations

from typing import Dict, Optional

import torch
from torch import nn

from isegm.model.is_model import ISModel
from isegm.model.modeling.hrnet_ocr import HighResolutionNet
from isegm.model.ops import LRMult
from isegm.utils.serialization import serialize


class HRNetModel(ISModel):
    """HRNetV2-W``width`` (``small`` = W18-small-v2) with an OCR head of ``ocr_width`` key channels.

    The click maps (and previous mask for ITER-M models) go through ``maps_transform`` (64 ch, stride 2)
    and are added to the stem's features after its first conv (``use_rgb_conv=False``, the RITM
    configs); with ``use_rgb_conv=True`` they are fused into the image by ``rgb_conv`` instead.
    ``backbone_forward`` returns ``{'instances', 'instances_aux'}`` at stride 4; ``forward`` (ISModel)
    upsamples them to the input size. Other keyword arguments go to :class:`ISModel`.
    """
    _config_class_path = 'isegm.model.is_hrnet_model.HRNetModel'

    @serialize
    def __init__(self, width: int = 48, ocr_width: int = 256, small: bool = False,
                 backbone_lr_mult: float = 0.1, norm_layer=nn.BatchNorm2d, **kwargs):
        super().__init__(norm_layer=norm_layer, **kwargs)
        self.feature_extractor = HighResolutionNet(width=width, ocr_width=ocr_width, small=small,
                                                   num_classes=1, norm_layer=norm_layer)
        self.feature_extractor.apply(LRMult(backbone_lr_mult))
        if ocr_width > 0:
            for head in (self.feature_extractor.ocr_distri_head, self.feature_extractor.ocr_gather_head,
                         self.feature_extractor.conv3x3_ocr):
                head.apply(LRMult(1.0))

    def backbone_forward(self, image: torch.Tensor, coord_features: Optional[torch.Tensor] = None
                         ) -> Dict[str, Optional[torch.Tensor]]:
        out, out_aux = self.feature_extractor(image, coord_features)
        return {'instances': out, 'instances_aux': out_aux}

    def load_pretrained_weights(self, path: str) -> int:
        """Initialise the backbone from ImageNet HRNet weights (see
        :meth:`HighResolutionNet.load_pretrained_weights`); returns the number of tensors loaded."""
        return self.feature_extractor.load_pretrained_weights(path)
