"""Object-contextual representations (OCR, Yuan et al. 2020) as used by the RITM / f-BRS HRNet heads.

Three pieces, with the reference state_dict layout:

* :class:`SpatialGather` turns coarse class logits into one context vector per class (soft pooling);
* :class:`ObjectAttentionBlock` (``object_context_block``) attends from every pixel to those class vectors;
* :class:`SpatialOCR` (``ocr_distri_head``) concatenates the attended context with the pixel features and
  fuses them with a 1x1 conv + BN + ReLU (+ dropout while training).

Module names keep the reference spelling (``f_pixel``, ``f_object``, ``f_down``, ``f_up``,
``conv_bn_dropout``) so official checkpoints load unchanged.
"""
from __future__ import annotations

from typing import Type

import torch
import torch.nn.functional as F
from torch import nn


def _conv1x1_bn_relu(in_ch: int, out_ch: int, norm_layer: Type[nn.Module]) -> list:
    """``[conv1x1 (no bias), Sequential(norm, ReLU)]``: the reference nests BN+ReLU one level deeper."""
    return [nn.Conv2d(in_ch, out_ch, kernel_size=1, bias=False),
            nn.Sequential(norm_layer(out_ch), nn.ReLU(inplace=True))]


class SpatialGather(nn.Module):
    """Class-region context: ``softmax_over_pixels(scale * probs) @ feats``.

    ``feats``: ``B x C x H x W``; ``probs``: ``B x K x H x W`` logits. Returns ``B x C x K x 1``.
    """

    def __init__(self, cls_num: int = 0, scale: float = 1):
        super().__init__()
        self.cls_num = cls_num
        self.scale = scale

    def forward(self, feats: torch.Tensor, probs: torch.Tensor) -> torch.Tensor:
        b, k = probs.shape[:2]
        weights = F.softmax(self.scale * probs.reshape(b, k, -1), dim=2)     # B x K x HW
        context = torch.matmul(weights, feats.reshape(b, feats.shape[1], -1).transpose(1, 2))  # B x K x C
        return context.transpose(1, 2).unsqueeze(3)                           # B x C x K x 1


class ObjectAttentionBlock(nn.Module):
    """Pixel-to-object attention (``object_context_block``).

    ``x``: pixel features ``B x C x H x W``; ``proxy``: object context ``B x C x K x 1``.
    Query = f_pixel(x), key = f_object(proxy), value = f_down(proxy), each projected to ``key_channels``;
    attention ``softmax(query . key / sqrt(key_channels))`` over the K objects; output f_up(context),
    ``B x C x H x W``. With ``scale > 1`` the pixels are max-pooled first and the result upsampled back.
    """

    def __init__(self, in_channels: int, key_channels: int, scale: int = 1,
                 norm_layer: Type[nn.Module] = nn.BatchNorm2d, align_corners: bool = True):
        super().__init__()
        self.scale = scale
        self.in_channels = in_channels
        self.key_channels = key_channels
        self.align_corners = align_corners

        self.pool = nn.MaxPool2d(kernel_size=(scale, scale))
        self.f_pixel = nn.Sequential(*_conv1x1_bn_relu(in_channels, key_channels, norm_layer),
                                     *_conv1x1_bn_relu(key_channels, key_channels, norm_layer))
        self.f_object = nn.Sequential(*_conv1x1_bn_relu(in_channels, key_channels, norm_layer),
                                      *_conv1x1_bn_relu(key_channels, key_channels, norm_layer))
        self.f_down = nn.Sequential(*_conv1x1_bn_relu(in_channels, key_channels, norm_layer))
        self.f_up = nn.Sequential(*_conv1x1_bn_relu(key_channels, in_channels, norm_layer))

    def forward(self, x: torch.Tensor, proxy: torch.Tensor) -> torch.Tensor:
        b, h, w = x.shape[0], x.shape[2], x.shape[3]
        if self.scale > 1:
            x = self.pool(x)
        ph, pw = x.shape[2], x.shape[3]

        query = self.f_pixel(x).reshape(b, self.key_channels, -1).transpose(1, 2)   # B x HW x Ck
        key = self.f_object(proxy).reshape(b, self.key_channels, -1)                # B x Ck x K
        value = self.f_down(proxy).reshape(b, self.key_channels, -1).transpose(1, 2)  # B x K x Ck

        sim_map = torch.matmul(query, key)
        sim_map = F.softmax((self.key_channels ** -.5) * sim_map, dim=-1)        # B x HW x K
        context = torch.matmul(sim_map, value)                                   # B x HW x Ck
        context = context.transpose(1, 2).reshape(b, self.key_channels, ph, pw)
        context = self.f_up(context)
        if self.scale > 1:
            context = F.interpolate(context, size=(h, w), mode='bilinear', align_corners=self.align_corners)
        return context


class SpatialOCR(nn.Module):
    """OCR distribution head (``ocr_distri_head``): ``conv_bn_dropout(cat([attended context, feats]))``."""

    def __init__(self, in_channels: int, key_channels: int, out_channels: int, scale: int = 1,
                 dropout: float = 0.1, norm_layer: Type[nn.Module] = nn.BatchNorm2d,
                 align_corners: bool = True):
        super().__init__()
        self.object_context_block = ObjectAttentionBlock(in_channels, key_channels, scale, norm_layer,
                                                         align_corners)
        self.conv_bn_dropout = nn.Sequential(
            nn.Conv2d(2 * in_channels, out_channels, kernel_size=1, padding=0, bias=False),
            nn.Sequential(norm_layer(out_channels), nn.ReLU(inplace=True)),
            nn.Dropout2d(dropout))

    def forward(self, feats: torch.Tensor, proxy_feats: torch.Tensor) -> torch.Tensor:
        context = self.object_context_block(feats, proxy_feats)
        return self.conv_bn_dropout(torch.cat([context, feats], dim=1))


# Reference spellings, for readers coming from the RITM / HRNet-OCR code bases.
SpatialGather_Module = SpatialGather
SpatialOCR_Module = SpatialOCR
ObjectAttentionBlock2D = ObjectAttentionBlock
