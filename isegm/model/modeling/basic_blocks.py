"""Small convolutional heads and separable convolutions with RITM's layer layout (state-dict keys).

* ``SeparableConv2d``: ``body = [depthwise kxk, pointwise 1x1, norm, activation]``.
* ``SepConvHead``: ``layers = [SeparableConv2d x num_layers, (Dropout), 1x1 conv to num_outputs]``.
* ``ConvHead``: ``convhead = [(kxk conv, ReLU, norm) x num_layers, 1x1 conv to out_channels]``.
"""
from __future__ import annotations

from typing import Callable, Optional, Type, Union

import torch
from torch import nn

ActivationSpec = Union[None, str, nn.Module, Type[nn.Module]]


def _activation_factory(activation: ActivationSpec) -> Callable[[], nn.Module]:
    """Map an activation spec (``None``, ``'relu'``, ``'softplus'``, a module class or instance) to a factory."""
    if activation is None:
        return nn.Identity
    if isinstance(activation, str):
        name = activation.lower()
        if name == 'relu':
            return nn.ReLU
        if name == 'softplus':
            return nn.Softplus
        raise ValueError(f"Unknown activation {activation!r}: use 'relu', 'softplus', a module or None")
    if isinstance(activation, nn.Module):
        return lambda: activation
    if isinstance(activation, type) and issubclass(activation, nn.Module):
        return activation
    raise ValueError(f"Unknown activation {activation!r}: use 'relu', 'softplus', a module or None")


class SeparableConv2d(nn.Module):
    """Depthwise ``dw_kernel`` conv, pointwise 1x1 conv, optional norm, activation (no biases by default)."""

    def __init__(self, in_channels: int, out_channels: int, dw_kernel: int, dw_padding: int,
                 dw_stride: int = 1, activation: ActivationSpec = None, use_bias: bool = False,
                 norm_layer: Optional[Callable[[int], nn.Module]] = None):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(in_channels, in_channels, kernel_size=dw_kernel, stride=dw_stride,
                      padding=dw_padding, bias=use_bias, groups=in_channels),
            nn.Conv2d(in_channels, out_channels, kernel_size=1, stride=1, bias=use_bias),
            norm_layer(out_channels) if norm_layer is not None else nn.Identity(),
            _activation_factory(activation)(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class SepConvHead(nn.Module):
    """``num_layers`` separable conv blocks (ReLU) and a final 1x1 conv with bias to ``num_outputs`` channels."""

    def __init__(self, num_outputs: int, in_channels: int, mid_channels: int, num_layers: int = 1,
                 kernel_size: int = 3, padding: int = 1, dropout_ratio: float = 0.0, dropout_indx: int = 0,
                 norm_layer: Optional[Callable[[int], nn.Module]] = nn.BatchNorm2d):
        super().__init__()
        layers = []
        for i in range(num_layers):
            layers.append(SeparableConv2d(in_channels if i == 0 else mid_channels, mid_channels,
                                          dw_kernel=kernel_size, dw_padding=padding,
                                          norm_layer=norm_layer, activation='relu'))
            if dropout_ratio > 0 and dropout_indx == i:
                layers.append(nn.Dropout(dropout_ratio))
        layers.append(nn.Conv2d(mid_channels, num_outputs, kernel_size=1, padding=0))
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor, *unused) -> torch.Tensor:
        return self.layers(x)


class ConvHead(nn.Module):
    """``num_layers`` x (kxk conv, ReLU, norm) at ``in_channels`` width, then a 1x1 conv to ``out_channels``."""

    def __init__(self, out_channels: int, in_channels: int = 32, num_layers: int = 1, kernel_size: int = 3,
                 padding: int = 1, norm_layer: Optional[Callable[[int], nn.Module]] = nn.BatchNorm2d):
        super().__init__()
        layers = []
        for _ in range(num_layers):
            layers += [nn.Conv2d(in_channels, in_channels, kernel_size, padding=padding),
                       nn.ReLU(),
                       norm_layer(in_channels) if norm_layer is not None else nn.Identity()]
        layers.append(nn.Conv2d(in_channels, out_channels, 1, padding=0))
        self.convhead = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor, *unused) -> torch.Tensor:
        return self.convhead(x)
