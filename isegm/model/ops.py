"""Click encoding and small layers shared by all click models.

Click maps are the one place where clicks become pixels (DESIGN: one owner per concept).
Points tensors follow RITM: ``B x 2N x 3`` rows ``(y, x, order)``, positives first, then negatives,
padded with -1; a row is absent when ``max(y, x) < 0``. f-BRS uses ``B x 2N x 2`` (no order column).
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn


class DistMaps(nn.Module):
    """Encode clicks as two maps (positive, negative): binary disks or tanh-normalised distance maps.

    Disks: ``1`` where ``(r-y)^2 + (c-x)^2 <= (R*s)^2`` for some present click, else ``0``.
    Distance maps: ``tanh(2 * d / (R*s))`` with ``d`` the Euclidean distance to the nearest present click
    (``1`` where there is none). The order of float operations is that of the reference code, so the
    maps are bit-identical to it.
    """

    def __init__(self, norm_radius: float, spatial_scale: float = 1.0, cpu_mode: bool = False,
                 use_disks: bool = False):
        super().__init__()
        self.norm_radius = norm_radius
        self.spatial_scale = spatial_scale
        self.cpu_mode = cpu_mode  # kept for config compatibility; one torch path serves all devices
        self.use_disks = use_disks

    def get_coord_features(self, points: torch.Tensor, batchsize: int, rows: int, cols: int) -> torch.Tensor:
        if self.use_disks and points.device.type == 'cpu':
            return self._disks_in_boxes(points, rows, cols)
        return self._full_maps(points, rows, cols)

    def _full_maps(self, points: torch.Tensor, rows: int, cols: int) -> torch.Tensor:
        """The maps computed over the whole image for every click at once (the reference formulation)."""
        num_points = points.shape[1] // 2
        pts = points.reshape(-1, points.shape[2])[:, :2].to(torch.float32)
        invalid = torch.max(pts, dim=1)[0] < 0

        row_coords = torch.arange(rows, dtype=torch.float32, device=points.device)
        col_coords = torch.arange(cols, dtype=torch.float32, device=points.device)
        scaled = pts * self.spatial_scale
        dy = row_coords[None, :] - scaled[:, 0:1]            # P x rows
        dx = col_coords[None, :] - scaled[:, 1:2]            # P x cols
        if not self.use_disks:
            denom = self.norm_radius * self.spatial_scale
            dy = dy / denom
            dx = dx / denom
        dist = (dy * dy)[:, :, None] + (dx * dx)[:, None, :]  # P x rows x cols
        dist[invalid] = 1e6

        dist = dist.view(-1, num_points, rows, cols).min(dim=1)[0]  # (B*2) x rows x cols
        dist = dist.view(-1, 2, rows, cols)
        if self.use_disks:
            return (dist <= (self.norm_radius * self.spatial_scale) ** 2).float()
        return torch.tanh(torch.sqrt(dist) * 2)

    def _disks_in_boxes(self, points: torch.Tensor, rows: int, cols: int) -> torch.Tensor:
        """The disk maps computed only inside each click's bounding box (CPU).

        ``min_p(d_p) <= R^2`` equals ``any_p(d_p <= R^2)``, and every ``d_p`` is computed with the same
        float operations as in the full-size computation, so the maps are bit-identical to it; outside a
        click's box (one pixel of margin) ``d_p > R^2``. Cost ~ clicks x R^2 instead of clicks x H x W.
        """
        num_points = points.shape[1] // 2
        pts = points[:, :, :2].to(torch.float32)
        out = torch.zeros(points.shape[0], 2, rows, cols, dtype=torch.float32, device=points.device)
        radius = self.norm_radius * self.spatial_scale
        row_coords = torch.arange(rows, dtype=torch.float32, device=points.device)
        col_coords = torch.arange(cols, dtype=torch.float32, device=points.device)
        scaled = pts * self.spatial_scale
        valid = (torch.max(pts, dim=2)[0] >= 0).tolist()
        centres = scaled.tolist()
        for b, (valid_b, centres_b) in enumerate(zip(valid, centres)):
            for p, (is_valid, (cy, cx)) in enumerate(zip(valid_b, centres_b)):
                if not (is_valid and math.isfinite(cy) and math.isfinite(cx)):
                    continue   # absent click; a non-finite one is > R^2 away everywhere in the full maps too
                r0, r1 = max(int(math.floor(cy - radius)) - 1, 0), min(int(math.ceil(cy + radius)) + 2, rows)
                c0, c1 = max(int(math.floor(cx - radius)) - 1, 0), min(int(math.ceil(cx + radius)) + 2, cols)
                if r0 >= r1 or c0 >= c1:
                    continue
                dy = row_coords[r0:r1] - scaled[b, p, 0:1]
                dx = col_coords[c0:c1] - scaled[b, p, 1:2]
                dist = (dy * dy)[:, None] + (dx * dx)[None, :]
                box = out[b, p // num_points, r0:r1, c0:c1]
                box.masked_fill_(dist <= radius ** 2, 1.0)
        return out

    def forward(self, x: torch.Tensor, coords: torch.Tensor) -> torch.Tensor:
        return self.get_coord_features(coords, x.shape[0], x.shape[2], x.shape[3])


class ScaleLayer(nn.Module):
    """Multiply by ``|scale * lr_mult|`` (RITM's learnable scale of the click-map branch)."""

    def __init__(self, init_value: float = 1.0, lr_mult: float = 1):
        super().__init__()
        self.lr_mult = lr_mult
        self.scale = nn.Parameter(torch.full((1,), init_value / lr_mult, dtype=torch.float32))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.abs(self.scale * self.lr_mult)


class BatchImageNormalize:
    """``(x - mean) / std`` per channel on an NCHW batch; not a module, so it owns no state_dict keys."""

    def __init__(self, mean: Sequence[float], std: Sequence[float], dtype: torch.dtype = torch.float32):
        self.mean = torch.as_tensor(mean, dtype=dtype)[None, :, None, None]
        self.std = torch.as_tensor(std, dtype=dtype)[None, :, None, None]

    def __call__(self, tensor: torch.Tensor) -> torch.Tensor:
        # in place on the fresh difference: the same values as ``(x - m) / s`` without a second full-size buffer
        return (tensor - self.mean.to(tensor.device)).div_(self.std.to(tensor.device))


class LRMult:
    """``module.apply(LRMult(0.1))`` tags parameters with a learning-rate multiplier for the trainer."""

    def __init__(self, lr_mult: float = 1.0):
        self.lr_mult = lr_mult

    def __call__(self, m: nn.Module) -> None:
        for p in m.parameters(recurse=False):
            p.lr_mult = self.lr_mult
