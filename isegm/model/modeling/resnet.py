"""Dilated ResNetV1b / V1s backbones as RITM and f-BRS use them (output stride 8, no classifier).

Layouts (state-dict keys identical to the reference ``ResNetBackbone``):

* ``resnet34`` = ResNet-34 V1b: 7x7 stem conv ``conv1``, ``BasicBlockV1b`` x [3, 4, 6, 3];
* ``resnet50`` / ``resnet101`` / ``resnet152`` = V1s: deep stem ``conv1`` = Sequential(3x3 s2 conv 64, BN,
  ReLU, 3x3 conv 64, BN, ReLU, 3x3 conv 128), ``BottleneckV1b`` x [3, 4, 6|23|36, 3], stride on the 3x3 conv.

Strides: stem 2, maxpool 2, layer2 2; layer3 / layer4 keep stride 1 and dilate by 2 / 4 (the first block of a
dilated layer uses the previous dilation on its first conv, like gluon-cv's ResNetV1b). ``forward`` returns
``(c1, c2, c3, c4)``; optional ``additional_features`` (the click maps, ``B x C x H/2 x W/2`` with
``C <= stem channels``) are zero-padded along channels and added after the stem's ReLU, before the maxpool.
"""
from __future__ import annotations

import logging
from collections import OrderedDict
from pathlib import Path
from typing import Callable, Dict, List, Mapping, Optional, Tuple, Type, Union

import torch
import torch.nn.functional as F
from torch import nn

from isegm.errors import CheckpointError

logger = logging.getLogger(__name__)

NormLayer = Callable[[int], nn.Module]

# ImageNet weights the reference recipes start from (timm's ports of the gluon-cv models).
PRETRAINED_URLS: Dict[str, str] = {
    'resnet34': 'https://github.com/rwightman/pytorch-pretrained-gluonresnet/releases/download/v0.1/'
                'gluon_resnet34_v1b-c6d82d59.pth',
    'resnet50': 'https://github.com/rwightman/pytorch-pretrained-gluonresnet/releases/download/v0.1/'
                'gluon_resnet50_v1s-1762acc0.pth',
    'resnet101': 'https://github.com/rwightman/pytorch-pretrained-gluonresnet/releases/download/v0.1/'
                 'gluon_resnet101_v1s-60fe0cc1.pth',
    'resnet152': 'https://github.com/rwightman/pytorch-pretrained-gluonresnet/releases/download/v0.1/'
                 'gluon_resnet152_v1s-dcc41b81.pth',
}


class BasicBlockV1b(nn.Module):
    """Two 3x3 convs; ``dilation`` on the first, ``previous_dilation`` on the second."""
    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1, dilation: int = 1,
                 downsample: Optional[nn.Module] = None, previous_dilation: int = 1,
                 norm_layer: NormLayer = nn.BatchNorm2d):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride=stride, padding=dilation, dilation=dilation,
                               bias=False)
        self.bn1 = norm_layer(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=previous_dilation,
                               dilation=previous_dilation, bias=False)
        self.bn2 = norm_layer(planes)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        shortcut = x if self.downsample is None else self.downsample(x)
        return self.relu(out + shortcut)


class BottleneckV1b(nn.Module):
    """1x1 -> 3x3 (stride, dilation) -> 1x1 (x4 channels)."""
    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1, dilation: int = 1,
                 downsample: Optional[nn.Module] = None, previous_dilation: int = 1,
                 norm_layer: NormLayer = nn.BatchNorm2d):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = norm_layer(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=dilation, dilation=dilation,
                               bias=False)
        self.bn2 = norm_layer(planes)
        self.conv3 = nn.Conv2d(planes, planes * self.expansion, 1, bias=False)
        self.bn3 = norm_layer(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        shortcut = x if self.downsample is None else self.downsample(x)
        return self.relu(out + shortcut)


# name -> (block, blocks per stage, deep stem)
RESNET_SPECS: Dict[str, Tuple[Type[nn.Module], List[int], bool]] = {
    'resnet34': (BasicBlockV1b, [3, 4, 6, 3], False),
    'resnet50': (BottleneckV1b, [3, 4, 6, 3], True),
    'resnet101': (BottleneckV1b, [3, 4, 23, 3], True),
    'resnet152': (BottleneckV1b, [3, 8, 36, 3], True),
}


class ResNetBackbone(nn.Module):
    """Dilated ResNet feature extractor; ``forward(x, additional_features=None) -> (c1, c2, c3, c4)``.

    ``c1`` has stride 4 (64 or 256 channels), ``c2`` stride 8, and with ``dilated=True`` ``c3``/``c4`` stay at
    stride 8 (``c4``: 512 channels for resnet34, 2048 otherwise).
    """

    def __init__(self, backbone: str = 'resnet50', dilated: bool = True, norm_layer: NormLayer = nn.BatchNorm2d,
                 stem_width: int = 64):
        super().__init__()
        if backbone not in RESNET_SPECS:
            raise ValueError(f'Unknown backbone {backbone!r}; choose one of {sorted(RESNET_SPECS)}')
        block, layers, deep_stem = RESNET_SPECS[backbone]
        self.backbone_name = backbone
        self.inplanes = 2 * stem_width if deep_stem else 64
        if deep_stem:
            self.conv1 = nn.Sequential(
                nn.Conv2d(3, stem_width, 3, stride=2, padding=1, bias=False),
                norm_layer(stem_width), nn.ReLU(True),
                nn.Conv2d(stem_width, stem_width, 3, stride=1, padding=1, bias=False),
                norm_layer(stem_width), nn.ReLU(True),
                nn.Conv2d(stem_width, 2 * stem_width, 3, stride=1, padding=1, bias=False))
        else:
            self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = norm_layer(self.inplanes)
        self.relu = nn.ReLU(True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        self.layer1 = self._make_layer(block, 64, layers[0], norm_layer=norm_layer)
        self.layer2 = self._make_layer(block, 128, layers[1], stride=2, norm_layer=norm_layer)
        if dilated:
            self.layer3 = self._make_layer(block, 256, layers[2], dilation=2, norm_layer=norm_layer)
            self.layer4 = self._make_layer(block, 512, layers[3], dilation=4, norm_layer=norm_layer)
        else:
            self.layer3 = self._make_layer(block, 256, layers[2], stride=2, norm_layer=norm_layer)
            self.layer4 = self._make_layer(block, 512, layers[3], stride=2, norm_layer=norm_layer)
        self.out_channels = 512 * block.expansion

    def _make_layer(self, block: Type[nn.Module], planes: int, blocks: int, stride: int = 1,
                    dilation: int = 1, norm_layer: NormLayer = nn.BatchNorm2d) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(
                nn.Conv2d(self.inplanes, planes * block.expansion, 1, stride=stride, bias=False),
                norm_layer(planes * block.expansion))
        if dilation not in (1, 2, 4):
            raise ValueError(f'Unsupported dilation {dilation}; use 1, 2 or 4')
        first_dilation = 2 if dilation == 4 else 1
        layers = [block(self.inplanes, planes, stride, dilation=first_dilation, downsample=downsample,
                        previous_dilation=dilation, norm_layer=norm_layer)]
        self.inplanes = planes * block.expansion
        for _ in range(1, blocks):
            layers.append(block(self.inplanes, planes, dilation=dilation, previous_dilation=dilation,
                                norm_layer=norm_layer))
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor, additional_features: Optional[torch.Tensor] = None
                ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        x = self.relu(self.bn1(self.conv1(x)))
        if additional_features is not None:
            extra = x.shape[1] - additional_features.shape[1]
            x = x + (F.pad(additional_features, [0, 0, 0, 0, 0, extra]) if extra else additional_features)
        x = self.maxpool(x)
        c1 = self.layer1(x)
        c2 = self.layer2(c1)
        c3 = self.layer3(c2)
        c4 = self.layer4(c3)
        return c1, c2, c3, c4

    def load_pretrained_weights(self, source: Union[None, str, Path, Mapping[str, torch.Tensor]] = None
                                ) -> List[str]:
        """Load ImageNet weights (a timm ``gluon_resnet*_v1b/v1s`` state_dict) into the backbone.

        ``source``: a path to the ``.pth`` file, a state_dict, or ``None`` to download the file of
        :data:`PRETRAINED_URLS` into the torch hub cache. Keys the backbone lacks (the ``fc`` classifier) are
        skipped; returns the list of skipped keys. Raises :class:`CheckpointError` when the file cannot be
        had or its tensors do not fit.
        """
        state_dict = _read_pretrained(self.backbone_name, source)
        own = self.state_dict()
        skipped = [k for k in state_dict if k not in own]
        matched = OrderedDict((k, v) for k, v in state_dict.items() if k in own)
        bad = [k for k, v in matched.items() if tuple(v.shape) != tuple(own[k].shape)]
        if bad or not matched:
            raise CheckpointError(
                f'Pretrained weights do not fit the {self.backbone_name} backbone '
                f'({len(matched)} matching keys, shape mismatch in {bad[:5]}); '
                f'use the file of {PRETRAINED_URLS.get(self.backbone_name, "the gluon ResNet release")}.')
        own.update(matched)
        self.load_state_dict(own)
        missing = [k for k in own if k not in matched and not k.endswith('num_batches_tracked')]
        if missing:
            logger.warning('Pretrained %s weights leave %d backbone tensors at their init values: %s',
                           self.backbone_name, len(missing), missing[:5])
        if skipped:
            logger.info('Skipped %d pretrained keys the backbone does not have: %s', len(skipped), skipped[:5])
        return skipped


def _read_pretrained(name: str, source: Union[None, str, Path, Mapping[str, torch.Tensor]]
                     ) -> Mapping[str, torch.Tensor]:
    if isinstance(source, Mapping):
        state_dict = source
    elif source is None:
        url = PRETRAINED_URLS.get(name)
        if url is None:
            raise CheckpointError(f'No ImageNet weights are known for {name!r}; pass a local .pth file.')
        try:
            state_dict = torch.hub.load_state_dict_from_url(url, map_location='cpu', progress=False)
        except Exception as exc:  # network errors come in many types
            raise CheckpointError(f'Could not download ImageNet weights for {name} from {url} ({exc}); '
                                  'download the file by hand and pass its path.') from exc
    else:
        path = Path(source)
        if not path.is_file():
            raise CheckpointError(f'Pretrained weights file {path} does not exist; download '
                                  f'{PRETRAINED_URLS.get(name, "the gluon ResNet weights")} and pass its path.')
        try:
            state_dict = torch.load(path, map_location='cpu', weights_only=True)
        except Exception as exc:
            raise CheckpointError(f'Could not read pretrained weights {path} ({exc}); '
                                  'the file may be truncated, download it again.') from exc
    if isinstance(state_dict, Mapping) and 'state_dict' in state_dict:
        state_dict = state_dict['state_dict']
    if not isinstance(state_dict, Mapping):
        raise CheckpointError('Pretrained weights must be a state_dict (a mapping of tensors).')
    return state_dict
