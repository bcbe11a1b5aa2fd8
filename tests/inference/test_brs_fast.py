"""BRS predictors on the model's fast inference path (BN-folded, channels_last copy) give the plain result.

Real models with the fixtures' deterministic stand-in weights, on a real GrabCut image shrunk to 72 x 96
(as in ``test_brs.py``); each comparison runs two copies of the same network, one with the fast path on,
one with it off, through the same clicks.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from isegm.inference.clicker import Click, Clicker
from isegm.inference.predictors import get_predictor

CLICKS = (Click(True, (36, 48)), Click(False, (8, 8)), Click(True, (45, 75)), Click(False, (66, 10)))
PROB_ATOL = 1e-3


pytestmark = pytest.mark.usefixtures('one_torch_thread')


def _build(name: str) -> nn.Module:
    from isegm.model.fbrs_models import FBRSDeeplabModel
    from isegm.model.is_deeplab_model import DeeplabModel
    from isegm.model.is_hrnet_model import HRNetModel
    if name == 'fbrs_deeplab':   # f-BRS resnet34_dh128_sbd layout
        return FBRSDeeplabModel(backbone='resnet34', deeplab_ch=128, aspp_dropout=0.2)
    if name == 'hrnet_iterm':   # RITM hrnet18s_cocolvis_itermask_3p layout (ITER-M, OCR, maps_transform)
        return HRNetModel(width=18, ocr_width=48, small=True, with_aux_output=True, use_leaky_relu=True,
                          use_rgb_conv=False, use_disks=True, norm_radius=5, with_prev_mask=True)
    # RITM r34_dh128_cocolvis layout
    return DeeplabModel(backbone='resnet34', deeplab_ch=128, aspp_dropout=0.2, use_leaky_relu=True,
                        use_rgb_conv=False, use_disks=True, norm_radius=5)


@pytest.fixture(scope='module')
def model_pair(reference_weights):
    """``get(name) -> (plain, fast)``: two instances with the same stand-in weights, fast path off / on."""
    cache = {}

    def get(name):
        if name not in cache:
            plain = _build(name)
            schema = reference_weights.schema_from_state_dict(plain.state_dict())
            state = reference_weights.reference_state_dict(schema)
            plain.load_state_dict(state)
            fast = _build(name)
            fast.load_state_dict(state)
            plain.eval().set_fast_inference(False)
            fast.eval().set_fast_inference(True)
            cache[name] = (plain, fast)
        return cache[name]
    return get


def _run(predictor, image, clicks):
    predictor.set_input_image(image)
    clicker = Clicker(image_shape=image.shape[:2])
    out = []
    for click in clicks:
        clicker.add_click(click)
        out.append(predictor.get_prediction(clicker))
    return out


class _CallCounter:
    """Counts forward calls of a model's convolutions, split by whether autograd was on."""

    def __init__(self, model: nn.Module):
        self.with_grad = 0
        self.without_grad = 0
        self._handles = [m.register_forward_hook(self._hook) for m in model.modules() if isinstance(m, nn.Conv2d)]

    def _hook(self, module, inputs, output):
        if torch.is_grad_enabled():
            self.with_grad += 1
        else:
            self.without_grad += 1

    def remove(self):
        for h in self._handles:
            h.remove()


@pytest.mark.parametrize('model_name,mode', [
    ('hrnet_iterm', 'RGB-BRS'),
    ('hrnet_iterm', 'f-BRS-B'),    # HRNet insertion 'A' (f-BRS-A is the same on HRNet)
    ('hrnet_iterm', 'f-BRS-C'),
    ('deeplab', 'f-BRS-B'),        # DeepLab-v3+ insertion points: after ASPP,
    ('fbrs_deeplab', 'f-BRS-A'),   # after c4 (before ASPP),
    ('fbrs_deeplab', 'f-BRS-C'),   # after the DeepLab head
])
def test_fast_path_gives_plain_result(model_pair, image, model_name, mode):
    plain, fast = model_pair(model_name)
    expected = _run(get_predictor(plain, mode, 'cpu', zoom_in_params=None), image, CLICKS)

    fast_predictor = get_predictor(fast, mode, 'cpu', zoom_in_params=None)
    counter = _CallCounter(fast)
    try:
        got = _run(fast_predictor, image, CLICKS)
    finally:
        counter.remove()
    # the fast copy ran everything: not one convolution of the plain modules, with or without autograd
    assert counter.with_grad == 0 and counter.without_grad == 0
    assert fast_predictor.opt_functor.num_calls >= 2, 'test premise: the last click is optimised'
    for k, (a, b) in enumerate(zip(expected, got)):
        np.testing.assert_allclose(b, a, rtol=0, atol=PROB_ATOL, err_msg=f'{mode}, click {k + 1}')
    # the optimisation moved the result away from the network's own answer (by 0.4 on the HRNet model,
    # less on the DeepLab stand-ins), and fast and plain differ by far less than that movement
    nobrs = _run(get_predictor(plain, 'NoBRS', 'cpu', zoom_in_params=None), image, CLICKS)
    moved = np.abs(got[-1] - nobrs[-1]).max()
    assert np.abs(got[-1] - expected[-1]).max() <= 0.01 * moved
    if model_name == 'hrnet_iterm':
        assert moved > 0.1


def test_fast_optimization_off_keeps_plain_modules_under_autograd(model_pair, image):
    plain, fast = model_pair('hrnet_iterm')
    expected = _run(get_predictor(plain, 'f-BRS-B', 'cpu', zoom_in_params=None), image, CLICKS[:3])
    predictor = get_predictor(fast, 'f-BRS-B', 'cpu', zoom_in_params=None,
                              predictor_params={'fast_optimization': False})
    counter = _CallCounter(fast)
    try:
        got = _run(predictor, image, CLICKS[:3])
    finally:
        counter.remove()
    # features from the fast copy (no plain convolution without autograd); the optimised tail (OCR + cls
    # head) on the plain modules, with autograd
    assert counter.without_grad == 0
    assert counter.with_grad > 0
    np.testing.assert_allclose(got[-1], expected[-1], rtol=0, atol=PROB_ATOL)


@pytest.mark.parametrize('fast_path', [False, True])
def test_optimisation_leaves_no_weight_gradients(model_pair, image, fast_path):
    """Gradients are taken for the optimised variables only: the model's ``.grad`` stays empty."""
    plain, fast = model_pair('hrnet_iterm')
    net = fast if fast_path else plain
    for mode in ('RGB-BRS', 'f-BRS-B'):
        predictor = get_predictor(net, mode, 'cpu', zoom_in_params=None)
        _run(predictor, image, CLICKS)
        assert predictor.opt_functor.num_calls >= 2
        assert all(p.grad is None for p in net.parameters()), mode


def test_objective_same_at_same_points(model_pair, image):
    """Loss and gradient of the f-BRS-B objective, fast vs plain, at the start point and a random point
    (deterministic: no optimiser trajectory involved)."""
    plain, fast = model_pair('hrnet_iterm')
    values = []
    for net in (plain, fast):
        predictor = get_predictor(net, 'f-BRS-B', 'cpu', zoom_in_params=None, prob_thresh=0.0,
                                  brs_opt_func_params={'min_iou_diff': 0})
        _run(predictor, image, CLICKS[:1])
        functor = predictor.opt_functor   # set up for the last click; call it at fixed points
        rng = np.random.RandomState(0)
        points = [np.zeros(predictor.opt_data.size), 0.2 * rng.randn(predictor.opt_data.size)]
        values.append([functor(x) for x in points])
    for (f_plain, g_plain), (f_fast, g_fast) in zip(*values):
        assert np.abs(g_plain).max() > 0
        assert abs(f_fast - f_plain) <= 1e-4 * abs(f_plain)
        np.testing.assert_allclose(g_fast, g_plain, rtol=0, atol=1e-3 * np.abs(g_plain).max())
