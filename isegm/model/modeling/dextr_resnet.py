"""DEXTR's dilated ResNet (``networks/deeplab_resnet.py`` of DEXTR-PyTorch), key-compatible.

Differences from a torchvision ResNet that the weights alone do not reveal:

* the stride of a bottleneck sits on its first 1x1 conv (Caffe style), not on the 3x3 conv;
* strides (conv1, maxpool, layer2, layer3, layer4) = (2, 2, 2, 1, 1) and dilation 2 in every block of
  layer3, 4 in layer4 (padding = dilation): output stride 8;
* the first block of every layer has a projection shortcut (``downsample.0`` conv, ``downsample.1`` BN),
  even in layer1 and in the dilated layers;
* the classifier is ``layer5`` (PSP head or the atrous-pyramid classifier) of the same module.
"""
from __future__ import annotations

from typing import Optional, Sequence

import torch
from torch import nn

from isegm.model.modeling.psp import PSPHead

RESNET101_BLOCKS = (3, 4, 23, 3)


class DextrBottleneck(nn.Module):
    """1x1 (stride) -> 3x3 (dilation) -> 1x1 (x4 channels), BN after each, ReLU, residual."""

    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1, dilation: int = 1,
                 downsample: Optional[nn.Module] = None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, kernel_size=1, stride=stride, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, kernel_size=3, stride=1, padding=dilation,
                               dilation=dilation, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * self.expansion, kernel_size=1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu(out + identity)


class AtrousClassifier(nn.Module):
    """DeepLab-v2 ASPP classifier (DEXTR's ``classifier='atrous'``): sum of dilated 3x3 convs."""

    def __init__(self, in_channels: int = 2048, n_classes: int = 1,
                 dilations: Sequence[int] = (6, 12, 18, 24)):
        super().__init__()
        self.conv2d_list = nn.ModuleList([
            nn.Conv2d(in_channels, n_classes, kernel_size=3, padding=d, dilation=d, bias=True)
            for d in dilations])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv2d_list[0](x)
        for conv in self.conv2d_list[1:]:
            out = out + conv(x)
        return out


class DextrResNet(nn.Module):
    """Dilated ResNet with DEXTR's layout; ``forward`` returns the classifier logits at stride 8
    (or the 2048-channel features when ``classifier`` is None).

    Args:
        n_classes: output channels of the classifier.
        n_input_channels: 4 for DEXTR (RGB + extreme-point heatmap).
        classifier: ``'psp'``, ``'atrous'`` or None.
        blocks: bottlenecks per layer, ``RESNET101_BLOCKS`` = (3, 4, 23, 3).
        dilations: dilation of layer3 and layer4, DEXTR: (2, 4).
        strides: strides of conv1, maxpool, layer2, layer3, layer4, DEXTR: (2, 2, 2, 1, 1).
    """

    def __init__(self, n_classes: int, n_input_channels: int, classifier: Optional[str],
                 blocks: Sequence[int], dilations: Sequence[int], strides: Sequence[int]):
        # No defaults on purpose: subclasses decorated with @serialize record the defaults of every class
        # in their MRO, and these arguments are not part of DextrModel's config.
        super().__init__()
        self._inplanes = 64
        self.conv1 = nn.Conv2d(n_input_channels, 64, kernel_size=7, stride=strides[0], padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=strides[1], padding=1)
        self.layer1 = self._make_layer(64, blocks[0])
        self.layer2 = self._make_layer(128, blocks[1], stride=strides[2])
        self.layer3 = self._make_layer(256, blocks[2], stride=strides[3], dilation=dilations[0])
        self.layer4 = self._make_layer(512, blocks[3], stride=strides[4], dilation=dilations[1])
        if classifier == 'psp':
            self.layer5: Optional[nn.Module] = PSPHead(2048, 512, sizes=(1, 2, 3, 6), n_classes=n_classes)
        elif classifier == 'atrous':
            self.layer5 = AtrousClassifier(2048, n_classes)
        elif classifier is None:
            self.layer5 = None
        else:
            raise ValueError(f"classifier must be 'psp', 'atrous' or None, got {classifier!r}")

    def _make_layer(self, planes: int, n_blocks: int, stride: int = 1, dilation: int = 1) -> nn.Sequential:
        out_ch = planes * DextrBottleneck.expansion
        # The reference projects the shortcut of the first block of every layer (its condition is always
        # true for the four layers of ResNet-101).
        downsample = nn.Sequential(
            nn.Conv2d(self._inplanes, out_ch, kernel_size=1, stride=stride, bias=False),
            nn.BatchNorm2d(out_ch),
        )
        layers = [DextrBottleneck(self._inplanes, planes, stride, dilation, downsample)]
        self._inplanes = out_ch
        layers += [DextrBottleneck(out_ch, planes, dilation=dilation) for _ in range(1, n_blocks)]
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        if self.layer5 is not None:
            x = self.layer5(x)
        return x
