"""Pyramid Scene Parsing head, laid out as DEXTR-PyTorch's ``PSPModule`` (state_dict keys included).

Keys: ``stages.{i}.1`` conv / ``stages.{i}.2`` BN (index 0 is the pooling), ``bottleneck.0`` conv /
``bottleneck.1`` BN, ``final`` conv with bias.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn


def _pyramid_stage(in_channels: int, out_channels: int, bins: int) -> nn.Sequential:
    """Average-pool to ``bins x bins`` -> 1x1 conv (no bias) -> BN -> ReLU."""
    return nn.Sequential(
        nn.AdaptiveAvgPool2d(output_size=(bins, bins)),
        nn.Conv2d(in_channels, out_channels, kernel_size=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


class PSPHead(nn.Module):
    """PSP classifier: pyramid pooling at ``sizes``, concatenation with the input features, a 1x1
    bottleneck and a 1x1 classifier.

    Input ``B x in_features x h x w``; output logits ``B x n_classes x h x w`` (same resolution).
    Pooled branches are upsampled bilinearly with ``align_corners=True`` (the behaviour of the
    PyTorch 0.3 ``F.upsample`` the reference was written for).
    """

    def __init__(self, in_features: int = 2048, out_features: int = 512,
                 sizes: Sequence[int] = (1, 2, 3, 6), n_classes: int = 1):
        super().__init__()
        branch_ch = in_features // 4
        self.stages = nn.ModuleList([_pyramid_stage(in_features, branch_ch, s) for s in sizes])
        # The reference sizes the bottleneck as in_features * (len(sizes) // 4 + 1).
        concat_ch = in_features * (len(sizes) // 4 + 1)
        self.bottleneck = nn.Sequential(
            nn.Conv2d(concat_ch, out_features, kernel_size=1, bias=False),
            nn.BatchNorm2d(out_features),
            nn.ReLU(inplace=True),
        )
        self.relu = nn.ReLU()
        self.final = nn.Conv2d(out_features, n_classes, kernel_size=1)

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        size = feats.shape[-2:]
        priors = [F.interpolate(stage(feats), size=size, mode='bilinear', align_corners=True)
                  for stage in self.stages]
        priors.append(feats)
        bottle = self.relu(self.bottleneck(torch.cat(priors, dim=1)))
        return self.final(bottle)
