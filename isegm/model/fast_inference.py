"""Fast inference path for click models: batch norm folded into convolutions, channels_last layout.

The plain module tree stays the reference path (and what ``state_dict()`` / ``save_checkpoint`` see).
:class:`FastInferenceMixin` keeps a *separate*, lazily built copy of the model in which every
``Conv2d -> BatchNorm2d`` pair that runs back to back is replaced by one convolution with the BN's affine
map folded into its weights and bias, and whose weights use the ``channels_last`` memory format (oneDNN
runs NHWC convolutions without re-ordering every feature map); on CPU, residual blocks and conv -> ReLU
chains, and the EfficientNet-Lite stem and MBConv blocks of the compact models (ReLU6, skip add, TF "same"
padding as the convolution's own where symmetric), then run as single oneDNN convolutions with
ReLU / ReLU6 / residual-add post-ops (:func:`fuse_conv_relu`;
with autograd on they fall back to the unfused ops, so the copy stays differentiable). The copy computes
the same function up to float rounding (a few 1e-4 of the logits' range on the reference fixtures).

The copy is used by ``forward`` only when the fast path is enabled, the model is in eval mode and autograd
is off (``torch.no_grad`` / ``inference_mode``); training and the BRS optimisations that need gradients
through the network keep the plain modules. It is rebuilt after ``train()/eval()``, ``load_state_dict`` and
when the parameters moved to another device or dtype.
"""
from __future__ import annotations

import copy
import logging
from typing import Any, Callable, Dict, List, Optional, Tuple

import torch
from torch import nn

from isegm.model.modeling.efficientnet_lite import SameConv2d

logger = logging.getLogger(__name__)

_FAST_ATTR = '_fast_inference_state'


def fold_conv_bn(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> None:
    """Fold an eval-mode ``bn`` that directly follows ``conv`` into ``conv`` (in place; adds a bias).

    ``bn(conv(x)) = s * (W x + b - mean) + beta`` with ``s = gamma / sqrt(var + eps)``, so the folded conv
    has ``W' = s W`` and ``b' = s (b - mean) + beta``. Computed in float64, stored in the conv's dtype.
    """
    w = conv.weight.detach()
    var = bn.running_var.detach().double()
    mean = bn.running_mean.detach().double()
    gamma = bn.weight.detach().double() if bn.weight is not None else torch.ones_like(var)
    beta = bn.bias.detach().double() if bn.bias is not None else torch.zeros_like(var)
    scale = gamma / torch.sqrt(var + bn.eps)
    bias = conv.bias.detach().double() if conv.bias is not None else torch.zeros_like(mean)
    new_w = w.double() * scale.reshape(-1, *([1] * (w.dim() - 1)))
    new_b = (bias - mean) * scale + beta
    conv.weight = nn.Parameter(new_w.to(w.dtype), requires_grad=False)
    conv.bias = nn.Parameter(new_b.to(w.dtype), requires_grad=False)


def find_conv_bn_pairs(model: nn.Module, run_forward: Callable[[], Any]) -> List[Tuple[str, str]]:
    """Names ``(conv, bn)`` of the pairs where the BN is called right after the conv, on its output.

    Found by running ``run_forward`` once with hooks, so any architecture is handled without naming
    rules. A pair is reported only when every call of the BN took the output of the conv called just
    before it (and of no other module), and each conv and BN appears in one pair at most.
    """
    names = {m: n for n, m in model.named_modules(remove_duplicate=False)}
    last: Dict[str, Any] = {'module': None, 'output': None}
    seen: Dict[str, Optional[str]] = {}   # bn name -> conv name, or None when inconsistent
    handles = []

    def pre_hook(module, inputs):
        if isinstance(module, nn.BatchNorm2d):
            name = names[module]
            prev = last['module']
            ok = (isinstance(prev, nn.Conv2d) and len(inputs) == 1 and inputs[0] is last['output'])
            conv_name = names[prev] if ok else None
            if name in seen and seen[name] != conv_name:
                conv_name = None
            seen[name] = conv_name

    def post_hook(module, inputs, output):
        if isinstance(module, (nn.Conv2d, nn.BatchNorm2d)):
            last['module'], last['output'] = module, output
        elif not isinstance(module, (nn.Sequential, nn.ModuleList, nn.ModuleDict)) and not list(module.children()):
            last['module'], last['output'] = module, output  # any other leaf breaks adjacency

    for module in model.modules():
        handles.append(module.register_forward_pre_hook(pre_hook))
        handles.append(module.register_forward_hook(post_hook))
    try:
        with torch.no_grad():
            run_forward()
    finally:
        for h in handles:
            h.remove()

    pairs = [(conv, bn) for bn, conv in seen.items() if conv is not None]
    convs = [c for c, _ in pairs]
    return [(c, b) for c, b in pairs if convs.count(c) == 1]


def fold_batch_norms(model: nn.Module, run_forward: Callable[[nn.Module], Any]) -> Tuple[nn.Module, int]:
    """A copy of ``model`` (eval mode, no grad) with every conv -> BN pair folded; returns ``(copy, n)``.

    ``run_forward(m)`` must run one forward pass of ``m`` (used to find which BN follows which conv).
    Folded BNs become ``nn.Identity``. The original model is left untouched.
    """
    folded = copy.deepcopy(model).eval()
    for p in folded.parameters():
        p.requires_grad_(False)
    pairs = find_conv_bn_pairs(folded, lambda: run_forward(folded))
    modules = dict(folded.named_modules(remove_duplicate=False))
    for conv_name, bn_name in pairs:
        bn = modules[bn_name]
        if bn.running_mean is None or bn.running_var is None:
            continue
        fold_conv_bn(modules[conv_name], bn)
        parent_name, _, attr = bn_name.rpartition('.')
        parent = modules[parent_name] if parent_name else folded
        setattr(parent, attr, nn.Identity())
    return folded, len(pairs)


def fold_scale_layers(model: nn.Module) -> int:
    """Fold every ``ScaleLayer`` that directly follows a ``Conv2d`` in an ``nn.Sequential`` (RITM's click-map
    branch: ``conv 3x3 -> ScaleLayer``) into the convolution: ``s * (W x + b) = (s W) x + s b``. In place on
    a no-grad copy; returns how many were folded."""
    from isegm.model.ops import ScaleLayer
    count = 0
    for module in list(model.modules()):
        if type(module) is not nn.Sequential:
            continue
        children = list(module._modules.items())
        for (_, prev), (name, child) in zip(children, children[1:]):
            if type(child) is ScaleLayer and isinstance(prev, nn.Conv2d):
                with torch.no_grad():
                    scale = torch.abs(child.scale * child.lr_mult).to(prev.weight.dtype)
                    prev.weight.mul_(scale)
                    if prev.bias is not None:
                        prev.bias.mul_(scale)
                module._modules[name] = nn.Identity()
                count += 1
    return count


def _compose_with_1x1(outer: nn.Conv2d, inner: nn.Conv2d) -> nn.Conv2d:
    """One convolution computing ``outer(inner(x))`` where ``outer`` is a 1x1, stride-1 convolution:
    ``W = W_o W_i`` (over the middle channels), ``b = W_o b_i + b_o`` (float64, stored in the weights' dtype).
    Exact up to rounding, borders included: the 1x1 convolution mixes channels per pixel, and the inner bias
    is added at every output pixel whatever the padding."""
    w_o = outer.weight.detach().double()[:, :, 0, 0]
    w_i = inner.weight.detach().double()
    b_i = inner.bias.detach().double() if inner.bias is not None else torch.zeros_like(w_i[:, 0, 0, 0])
    b_o = outer.bias.detach().double() if outer.bias is not None else torch.zeros_like(w_o[:, 0])
    conv = nn.Conv2d(inner.in_channels, outer.out_channels, inner.kernel_size, inner.stride, inner.padding,
                     inner.dilation, bias=True).to(device=inner.weight.device, dtype=inner.weight.dtype)
    conv.weight = nn.Parameter(torch.einsum('om,mikl->oikl', w_o, w_i).to(inner.weight.dtype), requires_grad=False)
    conv.bias = nn.Parameter((w_o @ b_i + b_o).to(inner.weight.dtype), requires_grad=False)
    return conv


def _is_plain_1x1(conv: nn.Module) -> bool:
    return (type(conv) is nn.Conv2d and conv.kernel_size == (1, 1) and conv.stride == (1, 1)
            and conv.padding == (0, 0) and conv.groups == 1)


def _composed_click_skip(self, coord_features: torch.Tensor) -> torch.Tensor:
    return torch.relu(torch.nn.functional.avg_pool2d(self.coord_skip(coord_features), 2, ceil_mode=True))


def compose_click_encoder(model: nn.Module) -> int:
    """Fold the last convolution of a compact click model's click encoder (``maps_transform``: ...,
    ``conv 3x3 stride 2 -> 64``, folded scale) into its two consumers, the 1x1 ``coord_proj`` (added to the
    stem) and the 1x1 ``coord_skip`` (after a 2x2 average pool), in place on a no-grad copy.

    The 64-channel stride-2 map is then never made: ``coord_proj`` becomes a 3x3 stride-2 convolution to
    32 channels on the encoder's 16-channel map, and ``coord_skip`` one to 16 channels, pooled afterwards.
    The average pool (no padding, so each window divides by the pixels it covers) commutes with a 1x1
    convolution and its bias. Returns 1 when composed, 0 when the model does not have that structure."""
    encoder = getattr(model, 'maps_transform', None)
    proj, skip = getattr(model, 'coord_proj', None), getattr(model, 'coord_skip', None)
    if not (type(encoder) is nn.Sequential and hasattr(model, 'click_skip')
            and _is_plain_1x1(proj) and _is_plain_1x1(skip)):
        return 0
    names = [n for n, m in encoder._modules.items() if type(m) is not nn.Identity]
    last = encoder._modules[names[-1]] if len(names) > 1 else None
    if not (type(last) is nn.Conv2d and last.groups == 1 and last.padding_mode == 'zeros'
            and last.out_channels == proj.in_channels == skip.in_channels):
        return 0
    model.coord_proj = _compose_with_1x1(proj, last)
    model.coord_skip = _compose_with_1x1(skip, last)
    encoder._modules[names[-1]] = nn.Identity()
    model.click_skip = _composed_click_skip.__get__(model, type(model))
    return 1


# ------------------------------------------------------------------------------------------------------
# Convolution + ReLU (+ residual add) fusion with oneDNN post-ops (CPU, float32, channels_last only)
# ------------------------------------------------------------------------------------------------------
def _onednn_fusion_available() -> bool:
    try:
        op = torch.ops.mkldnn._convolution_pointwise
        x = torch.ones(1, 2, 4, 4).contiguous(memory_format=torch.channels_last)
        w = torch.ones(2, 2, 3, 3).contiguous(memory_format=torch.channels_last)
        y = op.binary(x, x, w, None, [1, 1], [1, 1], [1, 1], 1, 'add', None, 'relu', [], '')
        z = op(x, w, None, [1, 1], [1, 1], [1, 1], 1, 'relu', [], '')
        leaky = op(x - 2, w, None, [1, 1], [1, 1], [1, 1], 1, 'leaky_relu', [0.2], '')
        conv = torch.nn.functional.conv2d(x, w, None, 1, 1)
        ref = torch.relu(conv)
        ref_leaky = torch.nn.functional.leaky_relu(torch.nn.functional.conv2d(x - 2, w, None, 1, 1), 0.2)
        return (torch.allclose(z, ref) and torch.allclose(y, torch.relu(ref + x))
                and torch.allclose(leaky, ref_leaky))
    except (AttributeError, RuntimeError):
        return False


def _fusable_weights(conv: nn.Module) -> bool:
    return (conv.padding_mode == 'zeros' and conv.weight.device.type == 'cpu'
            and conv.weight.dtype == torch.float32)


def _fusable(conv: nn.Module) -> bool:
    return type(conv) is nn.Conv2d and not isinstance(conv.padding, str) and _fusable_weights(conv)


def _conv_relu(conv: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
    return _conv_act(conv, x, 'relu', [])


def _conv_add_relu(conv: nn.Conv2d, x: torch.Tensor, other: torch.Tensor) -> torch.Tensor:
    if torch.is_grad_enabled():
        return torch.relu(conv(x) + other)
    x = x.contiguous(memory_format=torch.channels_last)
    other = other.contiguous(memory_format=torch.channels_last)
    return torch.ops.mkldnn._convolution_pointwise.binary(x, other, conv.weight, conv.bias, list(conv.padding),
                                                          list(conv.stride), list(conv.dilation), conv.groups,
                                                          'add', None, 'relu', [], '')


_RELU6 = ('hardtanh', [0.0, 6.0])


def _same_conv_args(conv: nn.Conv2d, x: torch.Tensor) -> Tuple[torch.Tensor, List[int]]:
    """Weight and symmetric padding that give TensorFlow "same" padding of :class:`SameConv2d` on ``x``.

    Where the "same" padding is symmetric it becomes the convolution's own. Where it is not (stride 2 on
    even sizes: one more pad row / column after than before) the kernel gets one leading row / column of
    zero taps and one more pad row / column on both sides: every output window then covers the same input
    pixels with the same weights, plus taps that add exactly ``0 * x``. This replaces an explicit
    ``F.pad`` copy of the feature map (2-3x slower for the depthwise convolutions, measured).
    """
    ih, iw = x.shape[-2:]
    (kh, kw), (sh, sw) = conv.kernel_size, conv.stride
    ph = max((-(-ih // sh) - 1) * sh + kh - ih, 0)
    pw = max((-(-iw // sw) - 1) * sw + kw - iw, 0)
    odd = (ph % 2, pw % 2)
    if odd == (0, 0):
        return conv.weight, [ph // 2, pw // 2]
    # one padded kernel per parity, kept on the module: the fast copy's weights never change in place
    # (any change to the model rebuilds the copy)
    cache = conv.__dict__.setdefault('_same_kernels', {})
    if odd not in cache:
        weight = torch.nn.functional.pad(conv.weight, [odd[1], 0, odd[0], 0])
        cache[odd] = weight.contiguous(memory_format=torch.channels_last)
    return cache[odd], [ph // 2 + odd[0], pw // 2 + odd[1]]


def _conv_act(conv: nn.Conv2d, x: torch.Tensor, attr: str, scalars: List[float]) -> torch.Tensor:
    """Conv (plain or :class:`SameConv2d`) + ReLU / ReLU6 (``hardtanh``) / LeakyReLU as one oneDNN
    convolution; with autograd on, the differentiable unfused ops."""
    if torch.is_grad_enabled():
        y = conv(x)
        if attr == 'relu':
            return torch.relu(y)
        if attr == 'leaky_relu':
            return torch.nn.functional.leaky_relu(y, scalars[0])
        return torch.clamp(y, *scalars)
    x = x.contiguous(memory_format=torch.channels_last)
    weight, padding = _same_conv_args(conv, x) if _is_same_conv(conv) else (conv.weight, list(conv.padding))
    return torch.ops.mkldnn._convolution_pointwise(x, weight, conv.bias, padding, list(conv.stride),
                                                   list(conv.dilation), conv.groups, attr, scalars, '')


def _conv_add(conv: nn.Conv2d, x: torch.Tensor, other: torch.Tensor) -> torch.Tensor:
    """``conv(x) + other`` as one oneDNN convolution with a sum post-op (no autograd)."""
    if torch.is_grad_enabled():
        return conv(x) + other
    x = x.contiguous(memory_format=torch.channels_last)
    other = other.contiguous(memory_format=torch.channels_last)
    return torch.ops.mkldnn._convolution_pointwise.binary(x, other, conv.weight, conv.bias, list(conv.padding),
                                                          list(conv.stride), list(conv.dilation), conv.groups,
                                                          'add', None, None, [], '')


def _is_same_conv(conv: nn.Module) -> bool:
    return type(conv) is SameConv2d


def _mbconv_forward(self, x: torch.Tensor) -> torch.Tensor:
    y = _conv_act(self._expand_conv, x, *_RELU6) if self.has_expand else x
    y = _conv_act(self._depthwise_conv, y, *_RELU6)
    return _conv_add(self._project_conv, y, x) if self.use_skip else self._project_conv(y)


def _effnet_stem(self, x: torch.Tensor) -> torch.Tensor:
    return _conv_act(self._conv_stem, x, *_RELU6)


def _basic_block_forward(self, x: torch.Tensor) -> torch.Tensor:
    residual = x if self.downsample is None else self.downsample(x)
    return _conv_add_relu(self.conv2, _conv_relu(self.conv1, x), residual)


def _bottleneck_forward(self, x: torch.Tensor) -> torch.Tensor:
    residual = x if self.downsample is None else self.downsample(x)
    out = _conv_relu(self.conv2, _conv_relu(self.conv1, x))
    return _conv_add_relu(self.conv3, out, residual)


class _ConvAct(nn.Module):
    """A folded conv followed by ReLU or LeakyReLU, run as one oneDNN convolution with the activation as
    a post-op."""

    def __init__(self, conv: nn.Conv2d, attr: str = 'relu', scalars: Optional[List[float]] = None):
        super().__init__()
        self.conv = conv
        self.attr = attr
        self.scalars = list(scalars or [])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _conv_act(self.conv, x, self.attr, self.scalars)


def _activation_post_op(module: nn.Module) -> Optional[Tuple[str, List[float]]]:
    if type(module) is nn.ReLU:
        return 'relu', []
    if type(module) is nn.LeakyReLU:
        return 'leaky_relu', [float(module.negative_slope)]
    return None


def fuse_conv_relu(model: nn.Module) -> int:
    """In a BN-folded, channels_last CPU model: run residual blocks (HRNet / ResNet-V1b basic and
    bottleneck blocks) and ``Sequential(conv, [Identity], ReLU | LeakyReLU)`` chains as fused oneDNN convolutions
    (conv + ReLU / LeakyReLU, conv + residual add + ReLU). Returns how many places were fused; 0 when unavailable."""
    if not _onednn_fusion_available():
        return 0
    from isegm.model.is_compact_model import CompactClickModel, FPNDecoder
    from isegm.model.modeling import dextr_resnet, efficientnet_lite, hrnet_ocr, resnet
    block_forwards = {hrnet_ocr.BasicBlock: (_basic_block_forward, 2), resnet.BasicBlockV1b: (_basic_block_forward, 2),
                      hrnet_ocr.Bottleneck: (_bottleneck_forward, 3), resnet.BottleneckV1b: (_bottleneck_forward, 3),
                      dextr_resnet.DextrBottleneck: (_bottleneck_forward, 3)}
    count = 0
    for module in list(model.modules()):
        spec = block_forwards.get(type(module))
        if isinstance(module, (efficientnet_lite.MBConvBlock, efficientnet_lite.EfficientNetLite)):
            count += _fuse_efficientnet_part(module)
        elif isinstance(module, (CompactClickModel, FPNDecoder)):
            count += _fuse_compact_part(module)
        elif spec is not None:
            fn, depth = spec
            convs = [getattr(module, f'conv{i}') for i in range(1, depth + 1)]
            bns = [getattr(module, f'bn{i}') for i in range(1, depth + 1)]
            if (all(_fusable(c) for c in convs) and all(isinstance(b, nn.Identity) for b in bns)
                    and type(module.relu) is nn.ReLU):
                module.forward = fn.__get__(module, type(module))
                count += 1
        elif type(module) is nn.Sequential:
            children = list(module._modules.items())
            for i, (name, child) in enumerate(children):
                if not (isinstance(child, nn.Conv2d) and _fusable(child)):
                    continue
                j = i + 1
                while j < len(children) and isinstance(children[j][1], nn.Identity):
                    j += 1
                post_op = _activation_post_op(children[j][1]) if j < len(children) else None
                if post_op is not None:
                    module._modules[name] = _ConvAct(child, *post_op)
                    module._modules[children[j][0]] = nn.Identity()
                    count += 1
    return count


def _fuse_efficientnet_part(module: nn.Module) -> int:
    """EfficientNet-Lite stem and MBConv blocks: conv + ReLU6 and conv + skip add as fused convolutions
    (only once their BNs are folded away)."""
    from isegm.model.modeling.efficientnet_lite import MBConvBlock
    if isinstance(module, MBConvBlock):
        convs = [module._depthwise_conv, module._project_conv] + ([module._expand_conv] if module.has_expand else [])
        bns = [module._bn1, module._bn2] + ([module._bn0] if module.has_expand else [])
        fn = _mbconv_forward
    else:
        convs, bns, fn = [module._conv_stem], [module._bn0], _effnet_stem
    if not (all(_fusable(c) or (_is_same_conv(c) and _fusable_weights(c) and c.dilation == (1, 1))
                for c in convs)
            and all(isinstance(b, nn.Identity) for b in bns)):
        return 0
    setattr(module, 'forward' if isinstance(module, MBConvBlock) else 'stem', fn.__get__(module, type(module)))
    return 1


def _fuse_compact_part(module: nn.Module) -> int:
    """The compact click model's click-feature entry and the FPN decoder's lateral adds
    (:func:`isegm.model.is_compact_model.conv_plus`) as convolutions with a sum post-op."""
    from isegm.model.is_compact_model import CompactClickModel
    if isinstance(module, CompactClickModel):
        name, convs = 'merge_clicks', [module.coord_proj]
    else:
        name, convs = 'merge_lateral', list(module.lateral)
    if not all(_fusable(c) for c in convs):
        return 0
    setattr(module, name, _conv_add)
    return 1


class FastInferenceMixin:
    """Adds :meth:`set_fast_inference` to a model (click models: ``forward(x, points) -> dict``; extreme-point
    models: ``forward(x) -> logits``, with :meth:`_fast_probe_inputs` overridden).

    Subclasses call :meth:`_fast_forward` at the top of ``forward``; it returns the fast copy's output,
    or None when the plain path must run. Off unless enabled (``load_model`` enables it for inference).
    """

    def set_fast_inference(self, enabled: bool = True, channels_last: bool = True) -> None:
        """Switch the fast inference path on or off (see the module docstring)."""
        state = self.__dict__.get(_FAST_ATTR)
        if state is None or state['enabled'] != enabled or state['channels_last'] != channels_last:
            self.__dict__[_FAST_ATTR] = {'enabled': bool(enabled), 'channels_last': bool(channels_last),
                                         'model': None, 'key': None}
            if not getattr(self, '_fast_hook_registered', False):
                self.register_load_state_dict_post_hook(_invalidate_after_load)
                self.__dict__['_fast_hook_registered'] = True
        if enabled and not self.training:
            self.fast_model()   # build now rather than in the first click

    @property
    def fast_inference(self) -> bool:
        """True when the fast path is enabled (it still runs only in eval mode without autograd)."""
        state = self.__dict__.get(_FAST_ATTR)
        return bool(state and state['enabled'])

    def train(self, mode: bool = True):
        state = self.__dict__.get(_FAST_ATTR)
        if state is not None:
            state['model'] = None   # weights may change while training
        return super().train(mode)

    def fast_model(self) -> nn.Module:
        """The folded copy used by the fast path (built on demand), or ``self`` when it is disabled.

        Predictors may run parts of it (e.g. a backbone) directly; its tensors are channels_last when that
        option is on, so feed it ``x.contiguous(memory_format=torch.channels_last)`` for best speed.
        """
        state = self.__dict__.get(_FAST_ATTR)
        if not state or not state['enabled']:
            return self
        param = next(self.parameters())
        key = (param.device, param.dtype)
        if state['model'] is None or state['key'] != key:
            state['model'] = self._build_fast_model(state['channels_last'])
            state['key'] = key
        return state['model']

    def _build_fast_model(self, channels_last: bool) -> nn.Module:
        state = self.__dict__.pop(_FAST_ATTR)
        hook_flag = self.__dict__.pop('_fast_hook_registered', None)
        try:
            param = next(self.parameters())
            probe = self._fast_probe_inputs(param.device, param.dtype)
            folded, num = fold_batch_norms(self, lambda m: m(*probe))
            num += fold_scale_layers(folded)
            num += compose_click_encoder(folded)
        finally:
            self.__dict__[_FAST_ATTR] = state
            if hook_flag is not None:
                self.__dict__['_fast_hook_registered'] = hook_flag
        fused = 0
        if channels_last:
            folded = folded.to(memory_format=torch.channels_last)
            fused = fuse_conv_relu(folded)
        logger.debug('fast inference copy of %s: %d conv+BN / conv+scale pairs folded, %d conv+ReLU fusions',
                     type(self).__name__, num, fused)
        return folded

    def _fast_probe_inputs(self, device: torch.device, dtype: torch.dtype) -> Tuple[torch.Tensor, ...]:
        """Arguments of one small forward pass (used to find the conv -> BN pairs): a click model's
        ``(x, points)``; models with another signature override this."""
        channels = 4 if getattr(self, 'with_prev_mask', False) else 3
        probe = torch.zeros(1, channels, 64, 64, device=device, dtype=dtype)
        points = torch.tensor([[[32.0, 32.0, 0.0], [-1.0, -1.0, -1.0]]], device=device, dtype=dtype)
        return probe, points

    def _fast_forward(self, x: torch.Tensor, *args: Any) -> Optional[Any]:
        """The fast copy's output for ``forward(x, *args)`` (a tensor or a dict of tensors, made
        contiguous), or None when the plain path must run."""
        state = self.__dict__.get(_FAST_ATTR)
        if not state or not state['enabled'] or self.training or torch.is_grad_enabled():
            return None
        model = self.fast_model()
        if state['channels_last'] and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        out = model(x, *args)
        if isinstance(out, torch.Tensor):
            return out.contiguous()
        return {k: (v.contiguous() if isinstance(v, torch.Tensor) else v) for k, v in out.items()}


def _invalidate_after_load(module: nn.Module, incompatible_keys: Any) -> None:
    state = module.__dict__.get(_FAST_ATTR)
    if state is not None:
        state['model'] = None
