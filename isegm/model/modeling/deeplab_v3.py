"""DeepLabV3+ feature extractor as RITM and f-BRS build it (identical state-dict keys).

Data flow: ``backbone`` -> ``(c1, c2, c3, c4)``; ``aspp(c4)`` (five parallel branches: 1x1, three dilated 3x3
with rates 12/24/36, global pooling; concatenated, projected by 1x1 conv + BN + ReLU + dropout) -> bilinear
resize (align_corners=True) to ``c1``'s size -> concatenated with ``skip_project(c1)`` (1x1 conv to 32 + BN +
ReLU) -> ``head`` (two separable 3x3 blocks and a 1x1 conv, ``ch`` channels). The stages are separate
submodules so that feature-BRS can run the network in parts (``forward_to_aspp`` / ``forward_from_aspp``).
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, List, Mapping, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from torch import nn

from isegm.model.modeling.basic_blocks import SeparableConv2d
from isegm.model.modeling.resnet import ResNetBackbone

NormLayer = Callable[[int], nn.Module]


class DeepLabV3Plus(nn.Module):
    """DeepLabV3+ on a dilated ResNet; ``forward(x, additional_features=None) -> (features,)`` at stride 4.

    Attributes the BRS predictors read: ``ch`` (output channels), ``aspp_in_channels`` (``c4`` channels),
    ``skip_project_in_channels`` (``c1`` channels).
    """

    def __init__(self, backbone: str = 'resnet50', norm_layer: NormLayer = nn.BatchNorm2d,
                 backbone_norm_layer: Optional[NormLayer] = None, ch: int = 256, project_dropout: float = 0.5,
                 **backbone_kwargs):
        super().__init__()
        if backbone_norm_layer is None:
            backbone_norm_layer = norm_layer
        self.backbone_name = backbone
        self.ch = ch
        self.aspp_in_channels = 512 if backbone == 'resnet34' else 2048
        self.skip_project_in_channels = 64 if backbone == 'resnet34' else 256

        # Registration order fixes the state-dict key order: backbone, head, skip_project, aspp.
        self.backbone = ResNetBackbone(backbone=backbone, norm_layer=backbone_norm_layer, **backbone_kwargs)
        self.head = _DeepLabHead(in_channels=ch + 32, mid_channels=ch, out_channels=ch, norm_layer=norm_layer)
        self.skip_project = _SkipProject(self.skip_project_in_channels, 32, norm_layer=norm_layer)
        self.aspp = _ASPP(self.aspp_in_channels, atrous_rates=(12, 24, 36), out_channels=ch,
                          project_dropout=project_dropout, norm_layer=norm_layer)

    def load_pretrained_weights(self, source: Union[None, str, Path, Mapping[str, torch.Tensor]] = None
                                ) -> List[str]:
        """Initialise the backbone with ImageNet weights (see :meth:`ResNetBackbone.load_pretrained_weights`)."""
        return self.backbone.load_pretrained_weights(source)

    def forward_to_aspp(self, x: torch.Tensor, additional_features: Optional[torch.Tensor] = None
                        ) -> Tuple[torch.Tensor, torch.Tensor]:
        """Backbone part: returns ``(c4, projected c1)``."""
        c1, _, _, c4 = self.backbone(x, additional_features)
        return c4, self.skip_project(c1)

    def forward_from_aspp(self, c4: torch.Tensor, c1: torch.Tensor) -> torch.Tensor:
        """ASPP on ``c4``, resized to and concatenated with the projected ``c1`` (the head's input)."""
        x = self.aspp(c4)
        x = F.interpolate(x, size=c1.shape[2:], mode='bilinear', align_corners=True)
        return torch.cat((x, c1), dim=1)

    def forward(self, x: torch.Tensor, additional_features: Optional[torch.Tensor] = None
                ) -> Tuple[torch.Tensor]:
        c4, c1 = self.forward_to_aspp(x, additional_features)
        return (self.head(self.forward_from_aspp(c4, c1)),)


class _SkipProject(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, norm_layer: NormLayer = nn.BatchNorm2d):
        super().__init__()
        self.skip_project = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, kernel_size=1, bias=False),
            norm_layer(out_channels), nn.ReLU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.skip_project(x)


class _DeepLabHead(nn.Module):
    def __init__(self, out_channels: int, in_channels: int, mid_channels: int = 256,
                 norm_layer: NormLayer = nn.BatchNorm2d):
        super().__init__()
        self.block = nn.Sequential(
            SeparableConv2d(in_channels, mid_channels, dw_kernel=3, dw_padding=1, activation='relu',
                            norm_layer=norm_layer),
            SeparableConv2d(mid_channels, mid_channels, dw_kernel=3, dw_padding=1, activation='relu',
                            norm_layer=norm_layer),
            nn.Conv2d(mid_channels, out_channels, kernel_size=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block(x)


def _conv_bn_relu(in_channels: int, out_channels: int, norm_layer: NormLayer, kernel_size: int = 1,
                  dilation: int = 1) -> nn.Sequential:
    padding = dilation if kernel_size == 3 else 0
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size, padding=padding, dilation=dilation, bias=False),
        norm_layer(out_channels), nn.ReLU())


class _AsppPooling(nn.Module):
    """Global average pooling branch, broadcast back to the input size."""

    def __init__(self, in_channels: int, out_channels: int, norm_layer: NormLayer):
        super().__init__()
        self.gap = nn.Sequential(
            nn.AdaptiveAvgPool2d((1, 1)),
            nn.Conv2d(in_channels, out_channels, kernel_size=1, bias=False),
            norm_layer(out_channels), nn.ReLU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Bilinear upsampling of a 1x1 map (align_corners=True) is a plain broadcast.
        return self.gap(x).expand(-1, -1, x.shape[2], x.shape[3])


class _ASPP(nn.Module):
    def __init__(self, in_channels: int, atrous_rates: Sequence[int], out_channels: int = 256,
                 project_dropout: float = 0.5, norm_layer: NormLayer = nn.BatchNorm2d):
        super().__init__()
        branches = [_conv_bn_relu(in_channels, out_channels, norm_layer)]
        branches += [_conv_bn_relu(in_channels, out_channels, norm_layer, kernel_size=3, dilation=rate)
                     for rate in atrous_rates]
        branches.append(_AsppPooling(in_channels, out_channels, norm_layer))
        self.concurent = nn.ModuleList(branches)  # sic: the reference key name

        project = [nn.Conv2d(len(branches) * out_channels, out_channels, kernel_size=1, bias=False),
                   norm_layer(out_channels), nn.ReLU()]
        if project_dropout > 0:
            project.append(nn.Dropout(project_dropout))
        self.project = nn.Sequential(*project)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.project(torch.cat([branch(x) for branch in self.concurent], dim=1))
