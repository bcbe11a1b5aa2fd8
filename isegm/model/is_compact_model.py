"""Our compact bundled models on an EfficientNet-Lite backbone.

* :class:`CompactClickModel` -- an RITM-style click model (ISModel: clicks as disks, optional previous
  mask for ITER-M). Click maps enter at the stem (added to its stride-2 output) and again in the
  stride-4 decoder; a light FPN decoder predicts logits at stride 4 (upsampled by ``ISModel.forward``).
* :class:`CompactExtremeModel` -- a DEXTR-style extreme-point model with DEXTR's input convention:
  ``B x 4 x H x W`` = RGB and the extreme-point heatmap, all in 0..255 (not normalised); returns
  logits ``B x 1 x H x W`` at input size.
"""
from __future__ import annotations

from typing import Dict, List, Optional

import torch
import torch.nn.functional as F
from torch import nn

from isegm.model.fast_inference import FastInferenceMixin
from isegm.model.is_model import IMAGENET_MEAN_STD, ISModel
from isegm.model.modeling.efficientnet_lite import EfficientNetLite
from isegm.model.ops import BatchImageNormalize, LRMult
from isegm.utils.serialization import serialize


def conv_plus(conv: nn.Module, x: torch.Tensor, other: torch.Tensor) -> torch.Tensor:
    """``conv(x) + other``: where the compact models add a convolution's output to another map (the fast
    inference copy replaces it by one convolution with a sum post-op)."""
    return conv(x) + other


def _conv_bn_relu(cin: int, cout: int, k: int = 3) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, k, padding=k // 2, bias=False), nn.BatchNorm2d(cout),
                         nn.ReLU(inplace=True))


class FPNDecoder(nn.Module):
    """Top-down FPN over strides 4..32 producing ``ch`` features at stride 4 (+ an aux logit at 8)."""

    def __init__(self, in_channels: List[int], ch: int = 64, extra_ch: int = 0, with_aux: bool = True):
        super().__init__()
        self.lateral = nn.ModuleList(nn.Conv2d(c, ch, 1) for c in in_channels)
        self.fuse = _conv_bn_relu(ch + extra_ch, ch)
        self.refine = _conv_bn_relu(ch, ch)
        self.head = nn.Conv2d(ch, 1, 1)
        self.aux_head = nn.Sequential(_conv_bn_relu(ch, ch // 2), nn.Conv2d(ch // 2, 1, 1)) if with_aux else None

    merge_lateral = staticmethod(conv_plus)   # lateral(feat) + upsampled coarser level

    def forward(self, feats: List[torch.Tensor], extra: Optional[torch.Tensor] = None) -> Dict[str, torch.Tensor]:
        x = self.lateral[-1](feats[-1])
        outs = [x]
        for lat, f in zip(reversed(self.lateral[:-1]), reversed(feats[:-1])):
            x = self.merge_lateral(lat, f, F.interpolate(x, size=f.shape[-2:], mode='bilinear', align_corners=False))
            outs.append(x)
        out = {}
        if self.aux_head is not None:
            out['instances_aux'] = self.aux_head(outs[-2])  # stride 8
        if extra is not None:
            x = torch.cat((x, extra), dim=1)
        out['instances'] = self.head(self.refine(self.fuse(x)))
        return out


class CompactClickModel(ISModel):
    """EfficientNet-Lite + FPN click model (ITER-M when ``with_prev_mask=True``)."""

    @serialize
    def __init__(self, backbone: str = 'lite0', decoder_ch: int = 64, backbone_lr_mult: float = 0.1,
                 **kwargs):
        kwargs.setdefault('use_rgb_conv', False)
        super().__init__(**kwargs)
        self.feature_extractor = EfficientNetLite(backbone, in_channels=3)
        self.feature_extractor.apply(LRMult(backbone_lr_mult))
        self.coord_proj = nn.Conv2d(64, 32, 1, bias=False)  # maps_transform (64 ch, stride 2) -> stem
        self.coord_skip = nn.Conv2d(64, 16, 1)
        self.decoder = FPNDecoder(self.feature_extractor.channels, decoder_ch, extra_ch=16,
                                  with_aux=self.with_aux_output)

    def load_pretrained_weights(self, path: Optional[str] = None) -> None:
        """ImageNet initialisation of the backbone (RITM recipes call this on ``feature_extractor``)."""
        self.feature_extractor.load_pretrained_weights(path)

    merge_clicks = staticmethod(conv_plus)   # coord_proj(click features) + stem output

    def click_skip(self, coord_features: torch.Tensor) -> torch.Tensor:
        """The click features' skip into the decoder: 2x2 average pool (to stride 4), 1x1 conv, ReLU."""
        return F.relu(self.coord_skip(F.avg_pool2d(coord_features, 2, ceil_mode=True)))

    def backbone_forward(self, image: torch.Tensor, coord_features: Optional[torch.Tensor] = None
                         ) -> Dict[str, torch.Tensor]:
        x = self.feature_extractor.stem(image)
        skip = None
        if coord_features is not None:
            x = self.merge_clicks(self.coord_proj, coord_features, x)
            skip = self.click_skip(coord_features)
        feats = self.feature_extractor.stages(x)
        if skip is not None and skip.shape[-2:] != feats[0].shape[-2:]:
            skip = F.interpolate(skip, size=feats[0].shape[-2:], mode='bilinear', align_corners=False)
        return self.decoder(feats, skip)


class CompactExtremeModel(FastInferenceMixin, nn.Module):
    """EfficientNet-Lite + FPN extreme-point model; input like DEXTR's (RGB + heatmap, 0..255)."""
    task = 'extreme'  # what the model does: 'click' or 'extreme' (used by loaders and tools)

    @serialize
    def __init__(self, backbone: str = 'lite0', decoder_ch: int = 64, backbone_lr_mult: float = 0.1,
                 norm_mean_std=IMAGENET_MEAN_STD, input_size: int = 512, heatmap_sigma: float = 10.0,
                 mask_threshold: float = 0.5, crop_pad: int = 30, grabcut_refine: bool = False):
        """What the model was trained with, which
        :class:`~isegm.inference.predictors.extreme.ExtremePointsPredictor` uses by default:
        ``input_size`` / ``heatmap_sigma``: the crop side and heatmap width; ``crop_pad``: the context around
        the points' box (the recipe's ``relax``; DEXTR's 50 costs the bundled model 0.055 / 0.086 mIoU on
        GrabCut / Berkeley: 0.783 / 0.701 against 0.838 / 0.787 with its own 30); ``mask_threshold``: the
        probability it is validated at (0.5; DEXTR's 0.8 suits DEXTR's unnormalised loss, not this model);
        ``grabcut_refine``: its masks are refined by GrabCut seeded with its map
        (:mod:`isegm.inference.grabcut_refine`; the bundled model: GrabCut 0.838 -> 0.881, Berkeley
        0.787 -> 0.839)."""
        super().__init__()
        self.input_size = int(input_size)
        self.heatmap_sigma = float(heatmap_sigma)
        self.mask_threshold = float(mask_threshold)
        self.crop_pad = int(crop_pad)
        self.grabcut_refine = bool(grabcut_refine)
        self.normalization = BatchImageNormalize(norm_mean_std[0], norm_mean_std[1])
        self.feature_extractor = EfficientNetLite(backbone, in_channels=4)
        self.feature_extractor.apply(LRMult(backbone_lr_mult))
        # the heatmap channel also goes straight to the stride-4 decoder
        self.heat_skip = nn.Conv2d(1, 16, 3, padding=1)
        self.decoder = FPNDecoder(self.feature_extractor.channels, decoder_ch, extra_ch=16, with_aux=False)

    def load_pretrained_weights(self, path: Optional[str] = None) -> None:
        self.feature_extractor.load_pretrained_weights(path)

    def _fast_probe_inputs(self, device: torch.device, dtype: torch.dtype):
        return (torch.zeros(1, 4, 64, 64, device=device, dtype=dtype),)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: ``B x 4 x H x W`` in 0..255 -> logits ``B x 1 x H x W``."""
        fast = self._fast_forward(x)   # folded copy, when enabled (eval, no autograd)
        if fast is not None:
            return fast
        image = self.normalization(x[:, :3] / 255.0)
        heat = x[:, 3:4] / 255.0
        feats = self.feature_extractor(torch.cat((image, heat), dim=1))
        skip = F.relu(self.heat_skip(F.adaptive_avg_pool2d(heat, feats[0].shape[-2:])))
        logits = self.decoder(feats, skip)['instances']
        return F.interpolate(logits, size=x.shape[-2:], mode='bilinear', align_corners=True)
