"""HRNetV2 backbone with an OCR head, in the layout of the RITM / f-BRS checkpoints.

Variants (``width`` = channels of the highest-resolution branch):

* W18 / W32 / W48: ``HighResolutionNet(width=18|32|48, ...)``: 4 blocks per branch; stages 2/3/4 have
  1/4/3 modules;
* W18-small (HRNetV2-W18-Small-v2): ``small=True``: 2 blocks per branch; stages 2/3/4 have 1/3/2 modules.

Stem: two stride-2 3x3 convs (64 ch), then ``layer1`` (Bottlenecks, 256 ch), then stages with 2, 3 and 4
parallel branches (``width * 2**i`` channels at stride ``4 * 2**i``) exchanging information in every
module (fuse layers). The four branch outputs are upsampled to stride 4 and concatenated
(``15 * width`` channels). With ``ocr_width > 0`` the head is OCR: ``aux_head`` predicts coarse logits
from the concatenated features, ``conv3x3_ocr`` reduces them to ``2 * ocr_width`` channels, the OCR
modules refine them and ``cls_head`` (1x1 conv) predicts the final logits. With ``ocr_width == 0``,
``cls_head`` is a 3x3 conv + BN + ReLU + 1x1 conv on the concatenated features and there is no aux output.

The forward pass returns ``[logits, aux_logits]`` at stride 4 (``aux_logits`` is ``None`` without OCR).
RITM adds its click features (``additional_features``, 64 ch at stride 2) after the first stem conv.
"""
from __future__ import annotations

import logging
import os
from typing import List, Optional, Sequence, Type

import torch
import torch.nn.functional as F
from torch import nn

from isegm.errors import CheckpointError
from isegm.model.modeling.ocr import SpatialGather, SpatialOCR

logger = logging.getLogger(__name__)

HRNET_PRETRAINED_URL = 'https://github.com/HRNet/HRNet-Image-Classification'


class BasicBlock(nn.Module):
    """ResNet basic block (two 3x3 convs), keys ``conv1 bn1 conv2 bn2 [downsample]``."""
    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: Optional[nn.Module] = None,
                 norm_layer: Type[nn.Module] = nn.BatchNorm2d):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn1 = norm_layer(planes)
        self.conv2 = nn.Conv2d(planes, planes, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn2 = norm_layer(planes)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + residual)


class Bottleneck(nn.Module):
    """ResNet-V1b bottleneck (1x1, 3x3 with the stride, 1x1 x4), keys ``conv1..3 bn1..3 [downsample]``."""
    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: Optional[nn.Module] = None,
                 norm_layer: Type[nn.Module] = nn.BatchNorm2d):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, kernel_size=1, bias=False)
        self.bn1 = norm_layer(planes)
        self.conv2 = nn.Conv2d(planes, planes, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn2 = norm_layer(planes)
        self.conv3 = nn.Conv2d(planes, planes * self.expansion, kernel_size=1, bias=False)
        self.bn3 = norm_layer(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + residual)


def _make_blocks(block, inplanes: int, planes: int, num_blocks: int, norm_layer, stride: int = 1
                 ) -> nn.Sequential:
    """A stack of ``num_blocks`` blocks; the first gets a 1x1 projection shortcut when shapes change."""
    downsample = None
    if stride != 1 or inplanes != planes * block.expansion:
        downsample = nn.Sequential(
            nn.Conv2d(inplanes, planes * block.expansion, kernel_size=1, stride=stride, bias=False),
            norm_layer(planes * block.expansion))
    layers = [block(inplanes, planes, stride, downsample=downsample, norm_layer=norm_layer)]
    layers += [block(planes * block.expansion, planes, norm_layer=norm_layer) for _ in range(1, num_blocks)]
    return nn.Sequential(*layers)


def _conv_bn(in_ch: int, out_ch: int, kernel_size: int, stride: int, norm_layer, relu: bool) -> nn.Sequential:
    layers = [nn.Conv2d(in_ch, out_ch, kernel_size=kernel_size, stride=stride, padding=kernel_size // 2,
                        bias=False),
              norm_layer(out_ch)]
    if relu:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class HighResolutionModule(nn.Module):
    """One HRNet module: a block stack per branch, then every output branch sums all input branches.

    Fuse ``j -> i``: ``j > i`` (lower resolution): 1x1 conv + BN, then bilinear upsampling;
    ``j < i``: ``i - j`` stride-2 3x3 conv + BN (ReLU between them, not after the last). Each sum is
    followed by ReLU.
    """

    def __init__(self, num_branches: int, block, num_blocks: Sequence[int], num_inchannels: Sequence[int],
                 num_channels: Sequence[int], multi_scale_output: bool = True,
                 norm_layer: Type[nn.Module] = nn.BatchNorm2d, align_corners: bool = True):
        super().__init__()
        if not (num_branches == len(num_blocks) == len(num_inchannels) == len(num_channels)):
            raise ValueError(f'HRNet module with {num_branches} branches got {len(num_blocks)} block counts, '
                             f'{len(num_inchannels)} input widths and {len(num_channels)} widths')
        self.num_branches = num_branches
        self.align_corners = align_corners
        self.multi_scale_output = multi_scale_output

        self.branches = nn.ModuleList(
            _make_blocks(block, num_inchannels[i], num_channels[i], num_blocks[i], norm_layer)
            for i in range(num_branches))
        self.num_inchannels = [c * block.expansion for c in num_channels]
        self.fuse_layers = self._make_fuse_layers(norm_layer)
        self.relu = nn.ReLU(inplace=True)

    def _make_fuse_layers(self, norm_layer) -> Optional[nn.ModuleList]:
        if self.num_branches == 1:
            return None
        ch = self.num_inchannels
        fuse_layers = []
        for i in range(self.num_branches if self.multi_scale_output else 1):
            row: List[Optional[nn.Module]] = []
            for j in range(self.num_branches):
                if j > i:
                    row.append(_conv_bn(ch[j], ch[i], 1, 1, norm_layer, relu=False))
                elif j == i:
                    row.append(None)
                else:
                    steps = [_conv_bn(ch[j], ch[i] if k == i - j - 1 else ch[j], 3, 2, norm_layer,
                                      relu=k != i - j - 1)
                             for k in range(i - j)]
                    row.append(nn.Sequential(*steps))
            fuse_layers.append(nn.ModuleList(row))
        return nn.ModuleList(fuse_layers)

    def forward(self, x: List[torch.Tensor]) -> List[torch.Tensor]:
        if self.num_branches == 1:
            return [self.branches[0](x[0])]
        x = [branch(xi) for branch, xi in zip(self.branches, x)]

        out = []
        for i, fuse_row in enumerate(self.fuse_layers):
            y = x[0] if i == 0 else fuse_row[0](x[0])
            height, width = x[i].shape[-2:]
            for j in range(1, self.num_branches):
                if j == i:
                    y = y + x[j]
                elif j > i:
                    y = y + F.interpolate(fuse_row[j](x[j]), size=(height, width), mode='bilinear',
                                          align_corners=self.align_corners)
                else:
                    y = y + fuse_row[j](x[j])
            out.append(self.relu(y))
        return out


class HighResolutionNet(nn.Module):
    """HRNetV2 (+ OCR head). ``forward(x, additional_features=None) -> [logits, aux_logits]`` at stride 4.

    Attributes used by the f-BRS predictors: ``compute_hrnet_feats``, ``aux_head``, ``conv3x3_ocr``,
    ``ocr_gather_head``, ``ocr_distri_head``, ``cls_head``.
    """

    def __init__(self, width: int, num_classes: int, ocr_width: int = 256, small: bool = False,
                 norm_layer: Type[nn.Module] = nn.BatchNorm2d, align_corners: bool = True):
        super().__init__()
        self.width = width
        self.ocr_width = ocr_width
        self.small = small
        self.align_corners = align_corners
        self.norm_layer = norm_layer

        self.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=2, padding=1, bias=False)
        self.bn1 = norm_layer(64)
        self.conv2 = nn.Conv2d(64, 64, kernel_size=3, stride=2, padding=1, bias=False)
        self.bn2 = norm_layer(64)
        self.relu = nn.ReLU(inplace=True)

        num_blocks = 2 if small else 4
        self.layer1 = _make_blocks(Bottleneck, 64, 64, num_blocks, norm_layer)
        pre_channels = [64 * Bottleneck.expansion]

        # (branches, modules) of stages 2, 3, 4
        stage_layout = [(2, 1), (3, 3 if small else 4), (4, 2 if small else 3)]
        self.stage2_num_branches, self.stage3_num_branches, self.stage4_num_branches = (
            b for b, _ in stage_layout)
        for idx, (num_branches, num_modules) in enumerate(stage_layout, start=1):
            channels = [width * 2 ** i for i in range(num_branches)]
            setattr(self, f'transition{idx}', self._make_transition_layer(pre_channels, channels))
            stage, pre_channels = self._make_stage(num_modules, num_branches, [num_blocks] * num_branches,
                                                   channels)
            setattr(self, f'stage{idx + 1}', stage)

        last_inp_channels = int(sum(pre_channels))
        self.last_inp_channels = last_inp_channels
        if ocr_width > 0:
            ocr_mid_channels = 2 * ocr_width
            self.conv3x3_ocr = nn.Sequential(
                nn.Conv2d(last_inp_channels, ocr_mid_channels, kernel_size=3, stride=1, padding=1),
                norm_layer(ocr_mid_channels),
                nn.ReLU(inplace=True))
            self.ocr_gather_head = SpatialGather(num_classes)
            self.ocr_distri_head = SpatialOCR(in_channels=ocr_mid_channels, key_channels=ocr_width,
                                              out_channels=ocr_mid_channels, scale=1, dropout=0.05,
                                              norm_layer=norm_layer, align_corners=align_corners)
            self.cls_head = nn.Conv2d(ocr_mid_channels, num_classes, kernel_size=1, stride=1, padding=0,
                                      bias=True)
            self.aux_head = nn.Sequential(
                nn.Conv2d(last_inp_channels, last_inp_channels, kernel_size=1, stride=1, padding=0),
                norm_layer(last_inp_channels),
                nn.ReLU(inplace=True),
                nn.Conv2d(last_inp_channels, num_classes, kernel_size=1, stride=1, padding=0, bias=True))
        else:
            self.cls_head = nn.Sequential(
                nn.Conv2d(last_inp_channels, last_inp_channels, kernel_size=3, stride=1, padding=1),
                norm_layer(last_inp_channels),
                nn.ReLU(inplace=True),
                nn.Conv2d(last_inp_channels, num_classes, kernel_size=1, stride=1, padding=0, bias=True))

    def _make_transition_layer(self, pre_channels: Sequence[int], cur_channels: Sequence[int]) -> nn.ModuleList:
        """Adapt branch widths (3x3 conv where they differ, ``None`` where equal) and spawn new branches
        from the lowest-resolution one with stride-2 3x3 convs."""
        layers: List[Optional[nn.Module]] = []
        num_pre = len(pre_channels)
        for i, out_ch in enumerate(cur_channels):
            if i < num_pre:
                layers.append(None if out_ch == pre_channels[i]
                              else _conv_bn(pre_channels[i], out_ch, 3, 1, self.norm_layer, relu=True))
            else:
                in_ch = pre_channels[-1]
                steps = [_conv_bn(in_ch, out_ch if j == i - num_pre else in_ch, 3, 2, self.norm_layer,
                                  relu=True)
                         for j in range(i + 1 - num_pre)]
                layers.append(nn.Sequential(*steps))
        return nn.ModuleList(layers)

    def _make_stage(self, num_modules: int, num_branches: int, num_blocks: Sequence[int],
                    num_channels: Sequence[int]):
        modules = []
        in_channels = list(num_channels)
        for _ in range(num_modules):
            module = HighResolutionModule(num_branches, BasicBlock, num_blocks, in_channels, num_channels,
                                          multi_scale_output=True, norm_layer=self.norm_layer,
                                          align_corners=self.align_corners)
            in_channels = module.num_inchannels
            modules.append(module)
        return nn.Sequential(*modules), in_channels

    # -- forward ----------------------------------------------------------------------------------------
    def forward(self, x: torch.Tensor, additional_features: Optional[torch.Tensor] = None
                ) -> List[Optional[torch.Tensor]]:
        feats = self.compute_hrnet_feats(x, additional_features)
        if self.ocr_width <= 0:
            return [self.cls_head(feats), None]
        out_aux = self.aux_head(feats)
        feats = self.conv3x3_ocr(feats)
        context = self.ocr_gather_head(feats, out_aux)
        feats = self.ocr_distri_head(feats, context)
        return [self.cls_head(feats), out_aux]

    def compute_pre_stage_features(self, x: torch.Tensor, additional_features: Optional[torch.Tensor] = None
                                   ) -> torch.Tensor:
        """Stem; ``additional_features`` (64 ch, stride 2) are added after the first conv+BN+ReLU."""
        x = self.relu(self.bn1(self.conv1(x)))
        if additional_features is not None:
            x = x + additional_features
        return self.relu(self.bn2(self.conv2(x)))

    def compute_hrnet_feats(self, x: torch.Tensor, additional_features: Optional[torch.Tensor] = None
                            ) -> torch.Tensor:
        """Backbone features: the 4 branches upsampled to stride 4 and concatenated, ``15 * width`` ch."""
        x = self.layer1(self.compute_pre_stage_features(x, additional_features))
        y_list = [x]
        for transition, stage in ((self.transition1, self.stage2), (self.transition2, self.stage3),
                                  (self.transition3, self.stage4)):
            x_list = []
            for i, trans in enumerate(transition):
                src = y_list[i] if i < len(y_list) else y_list[-1]
                x_list.append(src if trans is None else trans(src))
            y_list = stage(x_list)
        return self.aggregate_hrnet_features(y_list)

    def aggregate_hrnet_features(self, x: List[torch.Tensor]) -> torch.Tensor:
        size = x[0].shape[2:]
        ups = [F.interpolate(xi, size=size, mode='bilinear', align_corners=self.align_corners) for xi in x[1:]]
        return torch.cat([x[0]] + ups, dim=1)

    # -- ImageNet initialisation --------------------------------------------------------------------------
    def load_pretrained_weights(self, pretrained_path: str) -> int:
        """Initialise from an ImageNet HRNet classification checkpoint (HRNet-Image-Classification format).

        Keys are mapped as the reference does (``last_layer`` -> ``aux_head``, ``model.`` prefix dropped);
        keys absent from this network or of another shape are skipped. Returns the number of tensors loaded.
        Raises :class:`CheckpointError` when the file is missing or unreadable.
        """
        if not os.path.isfile(pretrained_path):
            raise CheckpointError(
                f'ImageNet-pretrained HRNet weights not found at "{pretrained_path}". Download the '
                f'HRNetV2-W{self.width}{"-small-v2" if self.small else ""} ImageNet weights from '
                f'{HRNET_PRETRAINED_URL} and pass their path (config.yml: IMAGENET_PRETRAINED_MODELS).')
        try:
            pretrained = torch.load(pretrained_path, map_location='cpu', weights_only=True)
        except Exception as exc:  # torch raises several types for corrupt / foreign files
            raise CheckpointError(f'Cannot read HRNet ImageNet weights from "{pretrained_path}": {exc}. '
                                  f'Check that the file is a complete PyTorch state_dict.') from exc
        if isinstance(pretrained, dict) and 'state_dict' in pretrained and isinstance(pretrained['state_dict'], dict):
            pretrained = pretrained['state_dict']
        if not isinstance(pretrained, dict):
            raise CheckpointError(f'"{pretrained_path}" holds a {type(pretrained).__name__}, not a state_dict.')

        model_dict = self.state_dict()
        loaded, skipped = {}, 0
        for key, value in pretrained.items():
            key = key.replace('last_layer', 'aux_head').replace('model.', '')
            if key in model_dict and torch.is_tensor(value) and value.shape == model_dict[key].shape:
                loaded[key] = value
            else:
                skipped += 1
        if not loaded:
            raise CheckpointError(f'"{pretrained_path}" has no tensor that fits HRNet-W{self.width}'
                                  f'{" small" if self.small else ""}; is it the right HRNet variant?')
        model_dict.update(loaded)
        self.load_state_dict(model_dict)
        logger.info('Loaded %d ImageNet tensors from %s (%d skipped, %d left at their initial values)',
                    len(loaded), pretrained_path, skipped, len(model_dict) - len(loaded))
        return len(loaded)
