"""ISModel: the part every RITM-style click model shares.

Input ``x``: ``B x 3 x H x W`` RGB in [0, 1], or ``B x 4 x H x W`` with the previous mask as 4th channel
for ITER-M models (``with_prev_mask=True``). ``points``: ``B x 2N x 3`` (see :mod:`isegm.model.ops`).
Output: ``{'instances': logits B x 1 x H x W, 'instances_aux': ... (when with_aux_output)}`` at input size.
Subclasses build ``self.feature_extractor`` (and heads) and implement ``backbone_forward``.
"""
from __future__ import annotations

from typing import Dict, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from isegm.model.fast_inference import FastInferenceMixin
from isegm.model.ops import BatchImageNormalize, DistMaps, LRMult, ScaleLayer
from isegm.utils.serialization import serialize

IMAGENET_MEAN_STD = ([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])


class ISModel(FastInferenceMixin, nn.Module):
    task = 'click'  # what the model does: 'click' or 'extreme' (used by loaders and tools)
    @serialize
    def __init__(self, use_rgb_conv: bool = True, with_aux_output: bool = False,
                 norm_radius: float = 260, use_disks: bool = False, cpu_dist_maps: bool = False,
                 clicks_groups=None, with_prev_mask: bool = False, use_leaky_relu: bool = False,
                 binary_prev_mask: bool = False, conv_extend: bool = False, norm_layer=nn.BatchNorm2d,
                 norm_mean_std=IMAGENET_MEAN_STD):
        super().__init__()
        self.with_aux_output = with_aux_output
        self.clicks_groups = clicks_groups
        self.with_prev_mask = with_prev_mask
        self.binary_prev_mask = binary_prev_mask
        self.normalization = BatchImageNormalize(norm_mean_std[0], norm_mean_std[1])

        self.coord_feature_ch = 2 * (len(clicks_groups) if clicks_groups is not None else 1)
        if with_prev_mask:
            self.coord_feature_ch += 1

        act = (lambda: nn.LeakyReLU(negative_slope=0.2)) if use_leaky_relu else (lambda: nn.ReLU(inplace=True))
        self.maps_transform: Optional[nn.Module] = None
        self.rgb_conv: Optional[nn.Module] = None
        if use_rgb_conv:
            mid = 6 + self.coord_feature_ch
            self.rgb_conv = nn.Sequential(
                nn.Conv2d(3 + self.coord_feature_ch, mid, kernel_size=1),
                norm_layer(mid), act(),
                nn.Conv2d(mid, 3, kernel_size=1))
        elif conv_extend:
            self.maps_transform = nn.Conv2d(self.coord_feature_ch, 64, kernel_size=3, stride=2, padding=1)
            self.maps_transform.apply(LRMult(0.1))
        else:
            self.maps_transform = nn.Sequential(
                nn.Conv2d(self.coord_feature_ch, 16, kernel_size=1), act(),
                nn.Conv2d(16, 64, kernel_size=3, stride=2, padding=1),
                ScaleLayer(init_value=0.05, lr_mult=1))

        if clicks_groups is not None:
            self.dist_maps = nn.ModuleList(
                DistMaps(norm_radius=r, spatial_scale=1.0, cpu_mode=cpu_dist_maps, use_disks=use_disks)
                for r in clicks_groups)
        else:
            self.dist_maps = DistMaps(norm_radius=norm_radius, spatial_scale=1.0, cpu_mode=cpu_dist_maps,
                                      use_disks=use_disks)

    # -- pieces the predictors (BRS) reuse -------------------------------------------------------------
    def prepare_input(self, x: torch.Tensor) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        """Split off the previous mask and normalise the image."""
        prev_mask = None
        if self.with_prev_mask:
            prev_mask = x[:, 3:, :, :]
            x = x[:, :3, :, :]
            if self.binary_prev_mask:
                prev_mask = (prev_mask > 0.5).float()
        return self.normalization(x), prev_mask

    def get_coord_features(self, image: torch.Tensor, prev_mask: Optional[torch.Tensor],
                           points: torch.Tensor) -> torch.Tensor:
        if self.clicks_groups is not None:
            groups = split_points_by_order(points, [1] + [-1] * (len(self.clicks_groups) - 1))
            feats = torch.cat([dm(image, pts) for dm, pts in zip(self.dist_maps, groups)], dim=1)
        else:
            feats = self.dist_maps(image, points)
        if prev_mask is not None:
            feats = torch.cat((prev_mask, feats), dim=1)
        return feats

    def backbone_forward(self, image: torch.Tensor, coord_features: Optional[torch.Tensor] = None
                         ) -> Dict[str, torch.Tensor]:
        raise NotImplementedError

    def forward(self, x: torch.Tensor, points: torch.Tensor) -> Dict[str, torch.Tensor]:
        fast = self._fast_forward(x, points)   # folded copy, when enabled (eval, no autograd)
        if fast is not None:
            return fast
        image, prev_mask = self.prepare_input(x)
        coord_features = self.get_coord_features(image, prev_mask, points)
        if self.rgb_conv is not None:
            outputs = self.backbone_forward(self.rgb_conv(torch.cat((image, coord_features), dim=1)))
        else:
            outputs = self.backbone_forward(image, self.maps_transform(coord_features))
        size = image.shape[2:]
        outputs['instances'] = F.interpolate(outputs['instances'], size=size, mode='bilinear',
                                             align_corners=True)
        if self.with_aux_output:
            outputs['instances_aux'] = F.interpolate(outputs['instances_aux'], size=size, mode='bilinear',
                                                     align_corners=True)
        return outputs


def split_points_by_order(points: torch.Tensor, groups) -> list:
    """Split a ``B x 2N x 3`` points tensor into click groups by click order (RITM ``clicks_groups``).

    ``groups`` gives how many clicks each group holds (``-1`` = as many as there are). Click ``k`` goes to
    group ``min(k, last)``; a negative click never goes to group 0. Each result is ``B x 2M x 3``.
    """
    bs, two_n, _ = points.shape
    n = two_n // 2
    sizes = [g if g > 0 else n for g in groups]
    last = len(groups) - 1
    out = [torch.full((bs, 2 * s, 3), -1.0) for s in sizes]
    pts = points.detach().float().cpu()
    for b in range(bs):
        filled = [[0, 0] for _ in groups]
        for row in range(two_n):
            order = int(pts[b, row, 2])
            if order < 0:
                continue
            neg = int(row >= n)
            gid = last if (neg and order == 0) else min(order, last)
            out[gid][b, filled[gid][neg] + neg * sizes[gid]] = pts[b, row]
            filled[gid][neg] += 1
    return [o.to(points.device) for o in out]
