"""DextrModel: DEXTR-PyTorch's ``resnet101(1, nInputChannels=4, classifier='psp')`` with identical
state_dict keys, plus the conversion of official DEXTR ``.pth`` contents into a clean state_dict.

Input: ``B x 4 x H x W`` float32, channels ``[R, G, B, heatmap]`` all in 0..255, **not normalised**.
Output: raw logits ``B x n_classes x ceil(H/8) x ceil(W/8)`` (stride 8), as DEXTR's network returns them.
The extreme-point pipeline around it lives in :mod:`isegm.inference.predictors.extreme`.
"""
from __future__ import annotations

import logging
from collections import OrderedDict
from typing import Any, Dict, Mapping, Optional

import torch

from isegm.errors import CheckpointError
from isegm.model.fast_inference import FastInferenceMixin
from isegm.model.modeling.dextr_resnet import RESNET101_BLOCKS, DextrResNet
from isegm.utils.serialization import serialize

logger = logging.getLogger(__name__)


class DextrModel(FastInferenceMixin, DextrResNet):
    """DEXTR network (dilated ResNet-101 + PSP head). Keys: ``conv1``, ``bn1``, ``layer1..4``, ``layer5``."""
    task = 'extreme'  # what the model does: 'click' or 'extreme' (used by loaders and tools)

    _config_class_path = 'isegm.model.is_dextr_model.DextrModel'

    @serialize
    def __init__(self, n_classes: int = 1, n_input_channels: int = 4, classifier: Optional[str] = 'psp'):
        super().__init__(n_classes=n_classes, n_input_channels=n_input_channels, classifier=classifier,
                         blocks=RESNET101_BLOCKS, dilations=(2, 4), strides=(2, 2, 2, 1, 1))
        self.n_input_channels = n_input_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        fast = self._fast_forward(x)   # folded copy, when enabled (eval, no autograd)
        return fast if fast is not None else super().forward(x)

    def _fast_probe_inputs(self, device: torch.device, dtype: torch.dtype):
        return (torch.zeros(1, self.n_input_channels, 64, 64, device=device, dtype=dtype),)

    @classmethod
    def from_state_dict(cls, obj: Any) -> 'DextrModel':
        """Build a model whose shape fits a DEXTR checkpoint's contents and load it (strict), in eval mode.

        ``obj`` is anything :func:`dextr_state_dict_from_checkpoint` accepts. Raises
        :class:`CheckpointError` when the weights do not fit the architecture.
        """
        state_dict = dextr_state_dict_from_checkpoint(obj)
        n_input_channels = int(state_dict['conv1.weight'].shape[1])
        if 'layer5.final.weight' in state_dict:
            classifier, n_classes = 'psp', int(state_dict['layer5.final.weight'].shape[0])
        elif 'layer5.conv2d_list.0.weight' in state_dict:
            classifier, n_classes = 'atrous', int(state_dict['layer5.conv2d_list.0.weight'].shape[0])
        else:
            classifier, n_classes = None, 1
        model = cls(n_classes=n_classes, n_input_channels=n_input_channels, classifier=classifier)
        try:
            model.load_state_dict(state_dict, strict=True)
        except RuntimeError as exc:
            raise CheckpointError(
                f'The checkpoint does not fit the DEXTR ResNet-101 ({classifier} classifier): {exc}. '
                'Use an official DEXTR checkpoint (e.g. dextr_pascal-sbd.pth) or one written by isegm.') from exc
        return model.eval()


def dextr_state_dict_from_checkpoint(obj: Any) -> 'OrderedDict[str, torch.Tensor]':
    """Clean state_dict from what an official DEXTR ``.pth`` holds (or a dict with a ``'state_dict'``).

    Official files are bare state_dicts; those saved from ``nn.DataParallel`` prefix every key with
    ``module.``, and those written by PyTorch < 0.4.1 lack the BatchNorm ``num_batches_tracked`` counters.
    The prefix is stripped and missing counters are inserted (zeros, int64) right after the matching
    ``running_var``, so the key order equals that of :class:`DextrModel`.

    Raises :class:`CheckpointError` when ``obj`` is not a mapping of tensors that looks like DEXTR.
    """
    if isinstance(obj, Mapping) and isinstance(obj.get('state_dict'), Mapping):
        obj = obj['state_dict']
    if not isinstance(obj, Mapping) or not obj:
        raise CheckpointError(
            f'Expected a DEXTR state_dict (a mapping of parameter names to tensors), got {type(obj).__name__}. '
            'Pass the object that torch.load returns for an official DEXTR .pth file.')
    bad = [k for k, v in obj.items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)]
    if bad:
        raise CheckpointError(f'The DEXTR state_dict has non-tensor entries (e.g. {bad[0]!r}); '
                              'the file is not a DEXTR checkpoint.')
    keys = list(obj.keys())
    if all(k.startswith('module.') for k in keys):
        keys = [k[len('module.'):] for k in keys]
    renamed: Dict[str, torch.Tensor] = dict(zip(keys, obj.values()))
    if 'conv1.weight' not in renamed or not any(k.startswith('layer4.') for k in renamed):
        raise CheckpointError(
            'The state_dict does not look like DEXTR (no conv1.weight / layer4.* keys); '
            'for RITM or f-BRS checkpoints use isegm.model.checkpoint.load_checkpoint.')

    out: 'OrderedDict[str, torch.Tensor]' = OrderedDict()
    n_filled = 0
    for key, value in renamed.items():
        out[key] = value
        if key.endswith('.running_var'):
            counter = key[:-len('running_var')] + 'num_batches_tracked'
            if counter not in renamed:
                out[counter] = torch.tensor(0, dtype=torch.long)
                n_filled += 1
    if n_filled:
        logger.debug('Filled in %d missing num_batches_tracked entries', n_filled)
    return out
