"""Predictors and ``get_predictor``, the factory with RITM's evaluation defaults per BRS mode."""
from __future__ import annotations

from types import MappingProxyType
from typing import Any, Mapping, Optional, Union

import torch
from torch import nn

from isegm.errors import InputError
from isegm.inference.predictors.base import BasePredictor
from isegm.inference.transforms import ZoomIn

__all__ = ['BasePredictor', 'get_predictor', 'supported_brs_modes', 'BRS_MODES']

BRS_MODES = ('NoBRS', 'RGB-BRS', 'DistMap-BRS', 'f-BRS-A', 'f-BRS-B', 'f-BRS-C')

_DEFAULT_LBFGS = MappingProxyType({'m': 20, 'factr': 0, 'pgtol': 1e-8, 'maxfun': 20})
_DEFAULT_BRS_OPT_FUNC = MappingProxyType({'min_iou_diff': 1e-3})
_ZOOM_IN_DEFAULTS = MappingProxyType({})


def get_predictor(net: nn.Module, brs_mode: str, device: Union[str, torch.device], prob_thresh: float = 0.49,
                  with_flip: bool = True, zoom_in_params: Optional[Mapping[str, Any]] = _ZOOM_IN_DEFAULTS,
                  predictor_params: Optional[Mapping[str, Any]] = None,
                  brs_opt_func_params: Optional[Mapping[str, Any]] = None,
                  lbfgs_params: Optional[Mapping[str, Any]] = None) -> BasePredictor:
    """Build the predictor for ``brs_mode`` (one of :data:`BRS_MODES`) with RITM's defaults.

    ``zoom_in_params``: None disables ZoomIn, ``{}`` (default) uses ZoomIn's defaults.
    ``predictor_params`` override the predictor's arguments (e.g. ``net_clicks_limit``, ``max_size``).
    ``lbfgs_params`` update ``{'m': 20, 'factr': 0, 'pgtol': 1e-8, 'maxfun': 20}`` (``maxiter`` is set to
    ``2 * maxfun``); ``brs_opt_func_params`` default to ``{'min_iou_diff': 1e-3}``.
    """
    if brs_mode not in BRS_MODES:
        raise InputError(f'unknown BRS mode {brs_mode!r}; valid modes: {", ".join(BRS_MODES)}')

    try:
        zoom_in = ZoomIn(**zoom_in_params) if zoom_in_params is not None else None
    except TypeError as exc:   # an unknown or misspelt option
        raise InputError(f'bad zoom_in_params {dict(zoom_in_params)!r}: {exc}') from None
    lbfgs = dict(_DEFAULT_LBFGS)
    lbfgs.update(lbfgs_params or {})
    lbfgs['maxiter'] = 2 * lbfgs['maxfun']
    opt_func_params = dict(_DEFAULT_BRS_OPT_FUNC if brs_opt_func_params is None else brs_opt_func_params)
    params: dict = {}

    if brs_mode == 'NoBRS':
        params.update(predictor_params or {})
        return BasePredictor(net, device, zoom_in=zoom_in, with_flip=with_flip, **params)

    # BRS predictors: imported here so that NoBRS works without them.
    from isegm.inference.predictors import brs, brs_functors

    params['optimize_after_n_clicks'] = 1
    if brs_mode.startswith('f-BRS'):
        params['net_clicks_limit'] = 8
        params.update(predictor_params or {})
        insertion_mode = {'f-BRS-A': 'after_c4', 'f-BRS-B': 'after_aspp', 'f-BRS-C': 'after_deeplab'}[brs_mode]
        opt_functor = brs_functors.ScaleBiasOptimizer(prob_thresh=prob_thresh, with_flip=with_flip,
                                                      optimizer_params=lbfgs, **opt_func_params)
        if _is_hrnet(net):
            predictor_cls = brs.HRNetFeatureBRSPredictor
            insertion_mode = {'after_c4': 'A', 'after_aspp': 'A', 'after_deeplab': 'C'}[insertion_mode]
        elif _is_deeplab(net):
            predictor_cls = brs.FeatureBRSPredictor
        else:
            raise InputError(f'{brs_mode} optimises features at insertion points of HRNet and DeepLab networks; '
                             f'{type(net).__name__} has none: use NoBRS, RGB-BRS or DistMap-BRS with this model')
        return predictor_cls(net, device, opt_functor=opt_functor, with_flip=with_flip,
                             insertion_mode=insertion_mode, zoom_in=zoom_in, **params)

    params['net_clicks_limit'] = 5
    params.update(predictor_params or {})
    opt_functor = brs_functors.InputOptimizer(prob_thresh=prob_thresh, with_flip=with_flip,
                                              optimizer_params=lbfgs, **opt_func_params)
    return brs.InputBRSPredictor(net, device, optimize_target='dmaps' if brs_mode == 'DistMap-BRS' else 'rgb',
                                 opt_functor=opt_functor, with_flip=with_flip, zoom_in=zoom_in, **params)


def supported_brs_modes(net: nn.Module) -> tuple:
    """The modes of :data:`BRS_MODES` that :func:`get_predictor` can build for ``net``: all of them for
    HRNet and DeepLab networks, no f-BRS-A/B/C for networks without their insertion points."""
    if _is_hrnet(net) or _is_deeplab(net):
        return BRS_MODES
    return tuple(m for m in BRS_MODES if not m.startswith('f-BRS'))


def _is_deeplab(net: nn.Module) -> bool:
    """DeepLab-v3+ networks (RITM's and f-BRS's) carry the f-BRS-A/B/C insertion points."""
    try:
        from isegm.model.is_deeplab_model import DeeplabNetwork
    except ImportError:
        return False
    return isinstance(net, DeeplabNetwork)


def _is_hrnet(net: nn.Module) -> bool:
    """HRNet-family networks get the HRNet-specific f-BRS insertion points."""
    classes = []
    try:
        from isegm.model.is_hrnet_model import HRNetModel
        classes.append(HRNetModel)
    except ImportError:
        pass
    try:
        from isegm.model.fbrs_models import FBRSHRNetModel
        classes.append(FBRSHRNetModel)
    except ImportError:
        pass
    return bool(classes) and isinstance(net, tuple(classes))
