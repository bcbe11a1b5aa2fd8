"""BRS predictors (RGB-BRS, DistMap-BRS, f-BRS-A/B/C) on real click models.

The models are the real classes with the fixtures' deterministic stand-in weights (random-looking but
well-scaled, so clicks visibly move the output), run on a real GrabCut image shrunk to 72 x 96.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.optimize import fmin_l_bfgs_b

from isegm.errors import InputError
from isegm.inference.clicker import Click, Clicker
from isegm.inference.predictors import get_predictor
from isegm.inference.predictors.brs import (FeatureBRSPredictor, HRNetFeatureBRSPredictor,
                                            InputBRSPredictor)
from isegm.inference.predictors.brs_functors import InputOptimizer, ScaleBiasOptimizer, batch_iou
from isegm.inference.predictors.brs_losses import BRSMaskLoss

BRS_MODES = ('RGB-BRS', 'DistMap-BRS', 'f-BRS-A', 'f-BRS-B', 'f-BRS-C')
# first click positive on the object, then a negative one in a corner, then a positive one where the
# untouched networks predict background
CLICKS = (Click(True, (36, 48)), Click(False, (8, 8)), Click(True, (45, 75)))


pytestmark = pytest.mark.usefixtures('one_torch_thread')


def _with_reference_weights(net, reference_weights):
    schema = reference_weights.schema_from_state_dict(net.state_dict())
    net.load_state_dict(reference_weights.reference_state_dict(schema))
    return net.eval()


@pytest.fixture(scope='module')
def models(reference_weights):
    """Lazily built models by name (each built once per module)."""
    from isegm.model.fbrs_models import FBRSDeeplabModel, FBRSHRNetModel
    from isegm.model.is_deeplab_model import DeeplabModel
    from isegm.model.is_hrnet_model import HRNetModel
    builders = {
        # RITM hrnet18s_cocolvis_itermask_3p layout (ITER-M, disks, maps_transform)
        'hrnet_iterm': lambda: HRNetModel(width=18, ocr_width=48, small=True, with_aux_output=True,
                                          use_leaky_relu=True, use_rgb_conv=False, use_disks=True,
                                          norm_radius=5, with_prev_mask=True),
        # RITM r34_dh128_cocolvis layout (no previous mask)
        'deeplab': lambda: DeeplabModel(backbone='resnet34', deeplab_ch=128, aspp_dropout=0.2,
                                        use_leaky_relu=True, use_rgb_conv=False, use_disks=True, norm_radius=5),
        'fbrs_hrnet': lambda: FBRSHRNetModel(width=18, ocr_width=48, small=True),
        'fbrs_deeplab': lambda: FBRSDeeplabModel(backbone='resnet34', deeplab_ch=128, aspp_dropout=0.2),
    }
    cache = {}

    def get(name):
        if name not in cache:
            torch.manual_seed(0)
            cache[name] = _with_reference_weights(builders[name](), reference_weights)
        return cache[name]
    return get


def _run(predictor, image, clicks, **kwargs):
    """Feed the clicks one by one; return the prediction after each."""
    predictor.set_input_image(image)
    clicker = Clicker(image_shape=image.shape[:2])
    out = []
    for click in clicks:
        clicker.add_click(click)
        out.append(predictor.get_prediction(clicker, **kwargs))
    return out


def _violation(prob, clicks):
    """How far the probabilities at the clicks are from their labels (0 = all satisfied exactly)."""
    return sum((1 - prob[c.coords]) if c.is_positive else prob[c.coords] for c in clicks)


# ---------------------------------------------------------------------------------------------------------
# end to end through get_predictor
# ---------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize('model_name,modes', [
    # (f-BRS-B is f-BRS-A on HRNet; DistMap-BRS on the ITER-M model has its own, shorter test)
    ('hrnet_iterm', ('RGB-BRS', 'f-BRS-A', 'f-BRS-C')),
    ('fbrs_hrnet', ('RGB-BRS', 'DistMap-BRS', 'f-BRS-B', 'f-BRS-C')),
    ('deeplab', ('RGB-BRS', 'f-BRS-B')),
    ('fbrs_deeplab', ('f-BRS-A', 'f-BRS-C')),
])
def test_modes_end_to_end(models, image, model_name, modes):
    net = models(model_name)
    nobrs = _run(get_predictor(net, 'NoBRS', 'cpu', zoom_in_params=None), image, CLICKS)
    for mode in modes:
        predictor = get_predictor(net, mode, 'cpu', zoom_in_params=None)
        expected_cls = (InputBRSPredictor if mode in ('RGB-BRS', 'DistMap-BRS') else
                        HRNetFeatureBRSPredictor if 'hrnet' in model_name else FeatureBRSPredictor)
        assert type(predictor) is expected_cls
        probs = _run(predictor, image, CLICKS)
        for prob in probs:
            assert prob.dtype == np.float32 and prob.shape == image.shape[:2]
            assert np.isfinite(prob).all() and prob.min() >= 0 and prob.max() <= 1
        assert predictor.opt_functor.num_calls >= 1, mode
        # one click: nothing to optimise, the network's own answer
        np.testing.assert_allclose(probs[0], nobrs[0], atol=1e-6, err_msg=mode)
        # three clicks: the optimisation moved the prediction towards the clicks
        assert _violation(probs[-1], CLICKS) < _violation(nobrs[-1], CLICKS), mode

        if mode in ('RGB-BRS', 'DistMap-BRS'):
            # one bias map for the image and its mirror; DistMap-BRS skips the previous-mask channel
            channels = 3 if mode == 'RGB-BRS' else 2
            assert predictor.opt_data.shape == (1, channels) + image.shape[:2]
        if 'hrnet' in model_name:
            # the last click is positive where the network alone predicts background: it gets raised,
            # while the negative click stays background
            yx = CLICKS[-1].coords
            assert nobrs[-1][yx] < 0.49, 'test premise'
            assert probs[-1][yx] > nobrs[-1][yx] + 0.02, mode
            assert probs[-1][CLICKS[1].coords] < 0.49, mode


def test_distmap_brs_on_iterm_model_skips_prev_mask_channel(models, image):
    net = models('hrnet_iterm')
    clicks = CLICKS[:2]
    nobrs = _run(get_predictor(net, 'NoBRS', 'cpu', zoom_in_params=None), image, clicks)[-1]
    predictor = get_predictor(net, 'DistMap-BRS', 'cpu', zoom_in_params=None, lbfgs_params={'maxfun': 5})
    prob = _run(predictor, image, clicks)[-1]
    # one bias map per click-map channel (positive, negative), none on the previous-mask channel
    assert predictor.opt_data.shape == (1, 2) + image.shape[:2]
    assert np.abs(predictor.opt_data).max() > 0
    assert _violation(prob, clicks) < _violation(nobrs, clicks)


@pytest.mark.parametrize('mode', BRS_MODES)
def test_satisfied_clicks_give_the_network_prediction(models, image, mode):
    """If every click already agrees with the prediction, the optimiser stops at its start point."""
    net = models('hrnet_iterm')
    clicks = (Click(True, (36, 48)), Click(True, (45, 75)), Click(True, (22, 30)))
    nobrs = _run(get_predictor(net, 'NoBRS', 'cpu', zoom_in_params=None), image, clicks)
    # prob_thresh 0.05: a positive click counts as satisfied where the probability exceeds 0.05
    predictor = get_predictor(net, mode, 'cpu', zoom_in_params=None, prob_thresh=0.05)
    probs = _run(predictor, image, clicks)
    assert predictor.opt_functor.num_calls == 1
    for prob, expected in zip(probs, nobrs):
        np.testing.assert_allclose(prob, expected, atol=1e-6)


@pytest.mark.parametrize('mode', ['RGB-BRS', 'f-BRS-C'])
def test_optimised_variables_persist_between_clicks_and_reset_on_new_image(models, image, mode):
    net = models('fbrs_hrnet')
    predictor = get_predictor(net, mode, 'cpu', zoom_in_params=None)
    nobrs = get_predictor(net, 'NoBRS', 'cpu', zoom_in_params=None)
    assert predictor.opt_data is None

    probs = _run(predictor, image, CLICKS)
    after_clicks = predictor.opt_data.copy()
    assert np.abs(after_clicks).max() > 0
    # the third click starts from the second click's variables: a fresh predictor that gets the three
    # clicks at once (starting from zeros) ends elsewhere
    fresh = get_predictor(net, mode, 'cpu', zoom_in_params=None)
    fresh.set_input_image(image)
    fresh_prob = fresh.get_prediction(Clicker(image_shape=image.shape[:2], init_clicks=CLICKS))
    assert np.abs(fresh_prob - probs[-1]).max() > 1e-3

    # new image: variables forgotten, the first click gives exactly the network's own prediction
    flipped = np.ascontiguousarray(image[::-1])
    predictor.set_input_image(flipped)
    assert predictor.opt_data is None and predictor.input_data is None
    first = _run(predictor, flipped, CLICKS[:1])[0]
    expected = _run(nobrs, flipped, CLICKS[:1])[0]
    np.testing.assert_allclose(first, expected, atol=1e-6)


def test_states_restore_optimised_variables(models, image):
    """GUI undo: states saved after a click bring back that click's variables and prediction."""
    net = models('fbrs_hrnet')
    predictor = get_predictor(net, 'f-BRS-C', 'cpu', zoom_in_params=None)
    predictor.set_input_image(image)
    clicker = Clicker(image_shape=image.shape[:2])
    clicker.add_click(CLICKS[0])
    first = predictor.get_prediction(clicker)
    states = predictor.get_states()
    saved = predictor.opt_data.copy()
    clicker.add_click(CLICKS[1])
    predictor.get_prediction(clicker)
    assert not np.array_equal(predictor.opt_data, saved)

    clicker.undo_click()
    predictor.set_states(states)
    np.testing.assert_array_equal(predictor.opt_data, saved)
    np.testing.assert_allclose(predictor.get_prediction(clicker), first, atol=1e-6)


def test_clicks_beyond_net_clicks_limit_constrain_the_optimisation(models, image):
    net = models('fbrs_hrnet')
    params = {'net_clicks_limit': 2}
    predictor = get_predictor(net, 'f-BRS-C', 'cpu', zoom_in_params=None, predictor_params=params)
    predictor.set_input_image(image)
    clicker = Clicker(image_shape=image.shape[:2])
    # the third click: negative, where the two-click result is foreground
    clicks = CLICKS[:2] + (Click(False, (54, 30)),)
    probs = []
    for click in clicks:
        if len(clicker) == 2:
            features = predictor.input_data
        clicker.add_click(click)
        probs.append(predictor.get_prediction(clicker))

    assert predictor.input_data is features  # features before the insertion point were not recomputed
    yx = clicks[2].coords
    assert probs[1][yx] > 0.51, 'test premise: after two clicks the third click point is foreground'
    assert probs[2][yx] < probs[1][yx] - 0.05  # the third click is a constraint of the optimisation
    nobrs = _run(get_predictor(net, 'NoBRS', 'cpu', zoom_in_params=None, predictor_params=params),
                 image, clicks)
    np.testing.assert_allclose(nobrs[2], nobrs[1], atol=1e-6)  # while the network ignores it


def test_brs_with_zoom_in(models, image):
    net = models('fbrs_hrnet')
    zoom = dict(target_size=64, min_crop_size=32, skip_clicks=1)
    clicks = (Click(True, (36, 48)), Click(True, (39, 52)), Click(False, (30, 44)))
    for mode in ('RGB-BRS', 'f-BRS-A'):
        predictor = get_predictor(net, mode, 'cpu', zoom_in_params=zoom, with_flip=False)
        probs = _run(predictor, image, clicks)
        assert predictor.zoom_in.object_roi is not None, 'test premise: the last click ran on a crop'
        if mode == 'RGB-BRS':  # the bias map was rebuilt for the zoomed-in input (longer side 64)
            assert max(predictor.opt_data.shape[2:]) == 64
        assert predictor.opt_functor.num_calls >= 1
        for prob in probs:
            assert prob.shape == image.shape[:2] and prob.dtype == np.float32
            assert np.isfinite(prob).all() and 0 <= prob.min() and prob.max() <= 1


def test_unknown_insertion_modes_and_targets(models):
    net = models('fbrs_hrnet')
    functor = ScaleBiasOptimizer(optimizer_params={})
    with pytest.raises(InputError, match='insertion mode'):
        HRNetFeatureBRSPredictor(net, 'cpu', functor, insertion_mode='after_c4')
    with pytest.raises(InputError, match='optimize_target'):
        InputBRSPredictor(net, 'cpu', InputOptimizer(optimizer_params={}), optimize_target='rgbd')
    with pytest.raises(InputError, match='BRS mode'):
        get_predictor(net, 'f-BRS-D', 'cpu')


# ---------------------------------------------------------------------------------------------------------
# loss and functors
# ---------------------------------------------------------------------------------------------------------
def test_brs_mask_loss_values():
    result = torch.tensor([[[[0.9, 0.2], [0.6, 0.1]]]])
    pos = torch.tensor([[[[1.0, 1.0], [0.0, 0.0]]]])
    neg = torch.tensor([[[[0.0, 0.0], [1.0, 0.0]]]])
    loss, max_pos, max_neg = BRSMaskLoss(eps=0)(result, pos, neg)
    assert loss.item() == pytest.approx((0.1 ** 2 + 0.8 ** 2) / 2 + 0.6 ** 2 / 1, rel=1e-6)
    assert max_pos == pytest.approx(0.8) and max_neg == pytest.approx(0.6)


def _toy_problem(with_flip=False):
    """A linear 'network tail': logits = features * scale + bias summed over channels."""
    gen = torch.Generator().manual_seed(0)
    feats = torch.randn(2 if with_flip else 1, 4, 8, 8, generator=gen)
    pos = torch.zeros(feats.shape[0], 1, 8, 8)
    neg = torch.zeros_like(pos)
    pos[:, :, 1:4, 1:4] = 1
    neg[:, :, 5:8, 5:8] = 1

    def logits(scale, bias):
        scale = scale.view(1, -1, 1, 1).repeat(feats.shape[0], 1, 1, 1)
        bias = bias.view(1, -1, 1, 1).repeat(feats.shape[0], 1, 1, 1)
        return (feats * scale + bias).sum(dim=1, keepdim=True) - 2.0
    return logits, pos, neg


def test_scale_bias_functor_gradient_matches_finite_differences():
    logits, pos, neg = _toy_problem()
    functor = ScaleBiasOptimizer(optimizer_params={}, min_iou_diff=0)
    functor.init_click(logits, pos, neg, torch.device('cpu'))
    x = np.random.default_rng(0).normal(0, 0.1, 8)
    f_val, grad = functor(x)
    assert isinstance(f_val, float) and grad.dtype == np.float64 and grad.shape == (8,)
    eps = 1e-3
    numeric = np.array([(functor(x + eps * e)[0] - functor(x - eps * e)[0]) / (2 * eps) for e in np.eye(8)])
    np.testing.assert_allclose(grad, numeric, rtol=2e-2, atol=2e-4)


def test_functor_stops_when_satisfied_or_mask_settles():
    logits, pos, neg = _toy_problem()
    # logits of +-20 on the click squares: every click satisfied at the start point
    functor = ScaleBiasOptimizer(optimizer_params={}, min_iou_diff=0)
    functor.init_click(lambda s, b: 20 * (pos - neg) + 1e-3 * (s.sum() + b.sum()), pos, neg, 'cpu')
    _, grad = functor(np.full(8, 0.1))  # the regulariser alone would give a gradient here
    assert not grad.any()

    functor = ScaleBiasOptimizer(optimizer_params={}, min_iou_diff=0.5)
    functor.init_click(logits, pos, neg, 'cpu')
    _, first = functor(np.zeros(8))
    _, second = functor(np.full(8, 1e-4))  # same mask as before -> IoU 1 -> stop
    assert first.any() and not second.any()


def test_functor_drives_lbfgs_to_the_clicks():
    logits, pos, neg = _toy_problem(with_flip=True)
    functor = ScaleBiasOptimizer(optimizer_params=dict(m=20, factr=0, pgtol=1e-8, maxfun=20, maxiter=40),
                                 with_flip=True, min_iou_diff=0)
    functor.init_click(logits, pos, neg, 'cpu')
    f0, _ = functor(np.zeros(8))
    x, f_opt, _ = fmin_l_bfgs_b(functor, np.zeros(8), **functor.optimizer_params)
    assert functor.num_calls > 2
    assert functor._best_loss < f0 and f_opt < f0
    prob = torch.sigmoid(functor.best_prediction)
    assert prob[pos.bool()].mean() > torch.sigmoid(logits(torch.ones(4), torch.zeros(4)))[pos.bool()].mean()


def test_input_optimizer_mirrors_bias_for_flip_half():
    functor = InputOptimizer(optimizer_params={}, with_flip=True, reg_weight=1.0)
    functor.init_click(None, None, None, 'cpu', shape=(1, 1, 2, 3))
    (bias,), reg = functor.unpack_opt_params(torch.arange(6, dtype=torch.float32))
    assert bias.shape == (2, 1, 2, 3)
    torch.testing.assert_close(bias[1], torch.flip(bias[0], dims=[2]))
    assert reg.item() == pytest.approx(2 * sum(v * v for v in range(6)))


def test_batch_iou_skips_empty_unions():
    a = torch.zeros(2, 1, 2, 2, dtype=torch.bool)
    b = torch.zeros_like(a)
    a[0, 0, 0] = True
    b[0, 0, 0, 0] = True
    np.testing.assert_allclose(batch_iou(a, b), [0.5])


@pytest.mark.parametrize('brs_mode', ['f-BRS-A', 'f-BRS-B', 'f-BRS-C'])
def test_feature_brs_on_a_model_without_insertion_points_is_an_input_error(brs_mode):
    # The bundled compact model (EfficientNet-Lite + FPN) has neither HRNet's nor DeepLab's feature
    # insertion points: get_predictor used to build a DeepLab f-BRS predictor that died with AttributeError.
    from isegm.model.checkpoint import load_model
    from isegm.model.is_compact_model import CompactClickModel
    net = load_model(None)
    assert isinstance(net, CompactClickModel)
    with pytest.raises(InputError, match='RGB-BRS or DistMap-BRS'):
        get_predictor(net, brs_mode, 'cpu')
    assert get_predictor(net, 'DistMap-BRS', 'cpu') is not None


def test_supported_brs_modes_are_exactly_the_buildable_ones():
    # The GUI offers supported_brs_modes(net): every listed mode must build, every other one must not.
    from isegm.inference.predictors import BRS_MODES as ALL_MODES, supported_brs_modes
    from isegm.model.checkpoint import load_model
    from isegm.model.is_hrnet_model import HRNetModel
    from tests.inference.tiny_model import make_tiny_model
    hrnet = HRNetModel(width=8, ocr_width=8, small=True, with_prev_mask=True, use_disks=True, norm_radius=5).eval()
    for net in (load_model(None), make_tiny_model(), hrnet):
        modes = supported_brs_modes(net)
        assert modes[0] == 'NoBRS' and set(modes) <= set(ALL_MODES)
        for mode in ALL_MODES:
            if mode in modes:
                assert get_predictor(net, mode, 'cpu', zoom_in_params=None) is not None
            else:
                with pytest.raises(InputError):
                    get_predictor(net, mode, 'cpu', zoom_in_params=None)
    assert 'f-BRS-B' not in supported_brs_modes(load_model(None))
    assert supported_brs_modes(hrnet) == ALL_MODES
