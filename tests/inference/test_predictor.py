"""NoBRS predictor and get_predictor, with a tiny real ISModel and the real-format HRNet18s checkpoint."""
import numpy as np
import pytest
import torch

from isegm.errors import InputError, PredictorStateError
from isegm.inference.clicker import Click, Clicker
from isegm.inference.predictors import BRS_MODES, BasePredictor, get_predictor
from isegm.inference.transforms import AddHorizontalFlip, LimitLongestSide, SigmoidForPred, ZoomIn
from tests.inference.tiny_model import make_image, make_tiny_model

H, W = 48, 64


def _clicker(*clicks, shape=(H, W)):
    clicker = Clicker(image_shape=shape)
    for pos, y, x in clicks:
        clicker.add_click(Click(pos, (y, x)))
    return clicker


class InputRecorder:
    """Forward pre-hook that keeps the inputs the network receives."""

    def __init__(self, net):
        self.calls = []
        self.handle = net.register_forward_pre_hook(lambda m, args: self.calls.append(
            tuple(a.detach().clone() for a in args)))


def test_output_shape_dtype_range_and_direct_equivalence():
    net = make_tiny_model()
    image = make_image(H, W)
    predictor = BasePredictor(net, 'cpu')
    predictor.set_input_image(image)
    clicker = _clicker((True, 20, 30), (False, 5, 5))
    prob = predictor.get_prediction(clicker)
    assert prob.shape == (H, W) and prob.dtype == np.float32
    assert 0 <= prob.min() and prob.max() <= 1 and prob.std() > 0

    x = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255
    points = torch.tensor([[[20, 30, 0], [5, 5, 1]]], dtype=torch.float32)
    with torch.no_grad():
        expected = torch.sigmoid(net(x, points)['instances'])[0, 0].numpy()
    np.testing.assert_allclose(prob, expected, rtol=0, atol=1e-6)
    assert predictor.prev_prediction.shape == (1, 1, H, W)


def test_transform_chain_order():
    zoom = ZoomIn()
    p = BasePredictor(make_tiny_model(), 'cpu', with_flip=True, zoom_in=zoom, max_size=800)
    assert [type(t) for t in p.transforms] == [ZoomIn, LimitLongestSide, SigmoidForPred, AddHorizontalFlip]
    assert p.transforms[0] is zoom
    assert [type(t) for t in BasePredictor(make_tiny_model(), 'cpu').transforms] == [SigmoidForPred]


def test_prediction_before_image_raises():
    with pytest.raises(PredictorStateError, match='set_input_image'):
        BasePredictor(make_tiny_model(), 'cpu').get_prediction(_clicker((True, 1, 1)))


@pytest.mark.parametrize('bad', [np.zeros((H, W), np.uint8), np.zeros((H, W, 4), np.uint8),
                                 np.zeros((H, W, 3), np.float32)])
def test_bad_images_raise(bad):
    with pytest.raises(InputError):
        BasePredictor(make_tiny_model(), 'cpu').set_input_image(bad)


def test_iter_m_uses_previous_prediction_and_external_mask():
    net = make_tiny_model(with_prev_mask=True)
    rec = InputRecorder(net)
    predictor = BasePredictor(net, 'cpu')
    predictor.set_input_image(make_image(H, W))
    clicker = _clicker((True, 20, 30))
    p1 = predictor.get_prediction(clicker)
    x1 = rec.calls[-1][0]
    assert x1.shape == (1, 4, H, W) and x1[:, 3].abs().max() == 0      # first click: zero mask

    clicker.add_click(Click(False, (40, 60)))
    p2 = predictor.get_prediction(clicker)
    np.testing.assert_array_equal(rec.calls[-1][0][0, 3].numpy(), p1)    # its own previous prediction

    ext = np.zeros((H, W), bool)
    ext[10:30, 10:40] = True
    p3 = predictor.get_prediction(clicker, prev_mask=ext)
    np.testing.assert_array_equal(rec.calls[-1][0][0, 3].numpy(), ext.astype(np.float32))
    assert np.abs(p3 - p2).max() > 1e-4                                   # the mask matters
    p4 = predictor.get_prediction(clicker, prev_mask=torch.from_numpy(ext.astype(np.float32))[None, None])
    np.testing.assert_array_equal(p3, p4)

    predictor.reset()
    predictor.get_prediction(clicker)
    assert rec.calls[-1][0][:, 3].abs().max() == 0


def test_non_iter_m_model_gets_three_channels():
    net = make_tiny_model(with_prev_mask=False)
    rec = InputRecorder(net)
    predictor = BasePredictor(net, 'cpu')
    predictor.set_input_image(make_image(H, W))
    predictor.get_prediction(_clicker((True, 20, 30)), prev_mask=np.ones((H, W), np.float32))
    assert rec.calls[-1][0].shape[1] == 3


def test_external_prev_mask_that_is_not_a_finite_numeric_mask_raises():
    predictor = BasePredictor(make_tiny_model(with_prev_mask=True), 'cpu')
    predictor.set_input_image(make_image(H, W))
    for value in (np.nan, np.inf, -np.inf):
        for y, x in ((3, 4), (H - 1, W - 1), (0, 0)):
            bad = np.full((H, W), 0.5, np.float32)
            bad[y, x] = value
            with pytest.raises(InputError, match='NaN or infinite'):
                predictor.get_prediction(_clicker((True, 20, 30)), prev_mask=bad)
    with pytest.raises(InputError, match='numeric'):
        predictor.get_prediction(_clicker((True, 20, 30)), prev_mask=np.full((H, W), 'x', dtype=object))
    assert predictor.get_prediction(_clicker((True, 20, 30)), prev_mask=np.zeros((H, W), np.float32)).shape == (H, W)
    with pytest.raises(InputError, match='divide a 0/255 mask by 255'):
        predictor.get_prediction(_clicker((True, 20, 30)), prev_mask=np.full((H, W), 255.0, np.float32))


def test_external_prev_mask_views_and_byte_orders_are_accepted():
    net = make_tiny_model(with_prev_mask=True)
    rec = InputRecorder(net)
    predictor = BasePredictor(net, 'cpu')
    predictor.set_input_image(make_image(H, W))
    mask = np.zeros((H, W), np.float32)
    mask[5:20, 10:30] = 1
    for view in (mask[::-1, ::-1], mask.astype('>f4'), mask.astype('>u2')[:, ::-1], np.asfortranarray(mask)):
        predictor.get_prediction(_clicker((True, 20, 30)), prev_mask=view)
        np.testing.assert_array_equal(rec.calls[-1][0][0, 3].numpy(), np.asarray(view, np.float32) > 0)


@pytest.mark.parametrize('shape', [(H + 1, W), (H, W - 1), (2, H, W), (H * W,)])
def test_external_prev_mask_of_wrong_size_raises(shape):
    predictor = BasePredictor(make_tiny_model(with_prev_mask=True), 'cpu')
    predictor.set_input_image(make_image(H, W))
    with pytest.raises(InputError, match='prev_mask'):
        predictor.get_prediction(_clicker((True, 20, 30)), prev_mask=np.zeros(shape, np.float32))


@pytest.mark.parametrize('coords', [(H, 3), (3, W), (-1, 0), (0, W + 0.5)])
def test_clicks_outside_the_image_raise(coords):
    predictor = BasePredictor(make_tiny_model(), 'cpu')
    predictor.set_input_image(make_image(H, W))
    clicker = Clicker()                      # knows no shape: the predictor checks
    if coords[0] >= 0:
        clicker.add_click(Click(True, coords))
    else:
        clicker.clicks_list.append(Click(True, coords, indx=0))
    with pytest.raises(InputError, match='outside'):
        predictor.get_prediction(clicker)
    with pytest.raises(InputError, match='outside'):
        _clicker((True, *coords))


def test_flip_is_the_average_of_both_passes():
    net = make_tiny_model()
    image = make_image(H, W)
    predictor = BasePredictor(net, 'cpu', with_flip=True)
    predictor.set_input_image(image)
    prob = predictor.get_prediction(_clicker((True, 20, 30), (False, 40, 10)))

    x = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255
    pts = torch.tensor([[[20, 30, 0], [40, 10, 1]]], dtype=torch.float32)
    pts_flipped = torch.tensor([[[20, W - 30 - 1, 0], [40, W - 10 - 1, 1]]], dtype=torch.float32)
    with torch.no_grad():
        a = net(x, pts)['instances']
        b = net(x.flip(-1), pts_flipped)['instances']
    expected = torch.sigmoid(0.5 * (a + b.flip(-1)))[0, 0].numpy()
    np.testing.assert_allclose(prob, expected, rtol=0, atol=1e-6)
    plain = BasePredictor(net, 'cpu')
    plain.set_input_image(image)
    assert np.abs(plain.get_prediction(_clicker((True, 20, 30), (False, 40, 10))) - prob).max() > 1e-4


def test_points_nd_layout_and_net_clicks_limit():
    predictor = BasePredictor(make_tiny_model(), 'cpu', net_clicks_limit=3)
    clicker = _clicker((True, 1, 2), (False, 3, 4), (True, 5, 6), (True, 7, 8), (False, 9, 10))
    pts = predictor.get_points_nd([clicker.get_clicks()])
    assert pts.dtype == torch.float32
    assert pts.tolist() == [[[1, 2, 0], [5, 6, 2], [-1, -1, -1], [3, 4, 1], [-1, -1, -1], [-1, -1, -1]]]
    unlimited = BasePredictor(make_tiny_model(), 'cpu').get_points_nd([clicker.get_clicks()])
    assert unlimited.shape == (1, 6, 3) and unlimited[0, 2].tolist() == [7, 8, 3]
    assert BasePredictor(make_tiny_model(), 'cpu').get_points_nd([[]]).tolist() == [[[-1, -1, -1]] * 2]


def test_net_clicks_limit_prediction_uses_only_first_clicks():
    net = make_tiny_model()
    image = make_image(H, W)
    limited = BasePredictor(net, 'cpu', net_clicks_limit=2)
    limited.set_input_image(image)
    full = BasePredictor(net, 'cpu')
    full.set_input_image(image)
    clicks = [(True, 20, 30), (False, 5, 5), (True, 40, 60), (False, 30, 10)]
    p_limited = limited.get_prediction(_clicker(*clicks))
    np.testing.assert_allclose(p_limited, full.get_prediction(_clicker(*clicks[:2])), atol=1e-6)
    assert np.abs(p_limited - full.get_prediction(_clicker(*clicks))).max() > 1e-4


def test_large_image_is_limited_and_output_is_full_size():
    net = make_tiny_model()
    rec = InputRecorder(net)
    predictor = BasePredictor(net, 'cpu', max_size=50)
    predictor.set_input_image(make_image(60, 100))
    prob = predictor.get_prediction(_clicker((True, 30, 90), shape=(60, 100)))
    assert rec.calls[-1][0].shape[2:] == (30, 50)
    assert rec.calls[-1][1][0, 0].tolist() == [15, 45, 0]
    assert prob.shape == (60, 100)


def test_zoom_in_crops_after_first_click_and_states_round_trip():
    net = make_tiny_model(with_prev_mask=True)
    rec = InputRecorder(net)
    image = make_image(300, 420, seed=1)
    predictor = BasePredictor(net, 'cpu', zoom_in=ZoomIn(target_size=160, min_crop_size=60))
    predictor.set_input_image(image)
    clicker = _clicker((True, 150, 200), shape=(300, 420))
    predictor.get_prediction(clicker)
    assert rec.calls[-1][0].shape[2:] == (300, 420)
    assert (predictor.prev_prediction > 0.5).any(), 'the tiny model should predict something'
    states = predictor.get_states()
    clicker_state = clicker.get_state()

    clicker.add_click(Click(False, (100, 150)))
    p2 = predictor.get_prediction(clicker)
    assert max(rec.calls[-1][0].shape[2:]) == 160 and p2.shape == (300, 420)
    clicker.add_click(Click(True, (160, 210)))
    p3 = predictor.get_prediction(clicker)

    predictor.set_states(states)                 # undo back to one click, then replay
    clicker.set_state(clicker_state)
    clicker.add_click(Click(False, (100, 150)))
    np.testing.assert_array_equal(predictor.get_prediction(clicker), p2)
    clicker.add_click(Click(True, (160, 210)))
    np.testing.assert_array_equal(predictor.get_prediction(clicker), p3)


def test_get_predictor_modes_and_defaults():
    net = make_tiny_model()
    p = get_predictor(net, 'NoBRS', 'cpu')
    assert type(p) is BasePredictor and p.with_flip and isinstance(p.zoom_in, ZoomIn)
    assert p.zoom_in.target_size == 400 and p.zoom_in.skip_clicks == 1
    p = get_predictor(net, 'NoBRS', 'cpu', with_flip=False, zoom_in_params=None,
                      predictor_params={'net_clicks_limit': 4, 'max_size': 600})
    assert p.zoom_in is None and not p.with_flip and p.net_clicks_limit == 4
    assert [type(t) for t in p.transforms] == [LimitLongestSide, SigmoidForPred]
    p = get_predictor(net, 'NoBRS', 'cpu', zoom_in_params={'target_size': 300})
    assert p.zoom_in.target_size == 300
    with pytest.raises(InputError, match='NoBRS.*f-BRS-C'):
        get_predictor(net, 'f-BRS-D', 'cpu')
    assert set(BRS_MODES) == {'NoBRS', 'RGB-BRS', 'DistMap-BRS', 'f-BRS-A', 'f-BRS-B', 'f-BRS-C'}


def test_get_predictor_brs_modes_build_brs_predictors():
    brs = pytest.importorskip('isegm.inference.predictors.brs')
    net = make_tiny_model()
    p = get_predictor(net, 'RGB-BRS', 'cpu')
    assert isinstance(p, brs.InputBRSPredictor) and p.net_clicks_limit == 5
    p = get_predictor(net, 'DistMap-BRS', 'cpu', predictor_params={'net_clicks_limit': 3})
    assert isinstance(p, brs.InputBRSPredictor) and p.net_clicks_limit == 3
    assert p.zoom_in is not None and p.with_flip


def test_real_checkpoint_through_predictor_reproduces_fixture(reference_dir):
    hrnet = pytest.importorskip('isegm.model.is_hrnet_model')
    from isegm.utils.serialization import build_from_config
    fdir = reference_dir / 'ritm' / 'hrnet18s_cocolvis_itermask_3p'
    ckpt = torch.load(fdir / 'checkpoint.pth', map_location='cpu', weights_only=True)
    net = build_from_config(ckpt['config'], {'isegm.model.is_hrnet_model.HRNetModel': hrnet.HRNetModel})
    net.load_state_dict(ckpt['state_dict'])
    net.eval()
    assert net.with_prev_mask

    io = np.load(fdir / 'io.npz')
    image = np.rint(io['image'][0].transpose(1, 2, 0) * 255).astype(np.uint8)
    np.testing.assert_array_equal(image.transpose(2, 0, 1)[None].astype(np.float32) / 255, io['image'])
    # fixture clicks in session order: (150,200)+ #0, (60,330)- #1, (201.5,143.25)+ #2, (280,30)+ #3
    clicker = _clicker((True, 150, 200), (False, 60, 330), (True, 201.5, 143.25), (True, 280, 30),
                       shape=image.shape[:2])
    predictor = get_predictor(net, 'NoBRS', 'cpu', with_flip=False, zoom_in_params=None)
    np.testing.assert_array_equal(predictor.get_points_nd([clicker.get_clicks()]).numpy(), io['points'])
    predictor.set_input_image(image)
    prob = predictor.get_prediction(clicker, prev_mask=io['prev_mask'])
    ref = torch.sigmoid(torch.from_numpy(io['instances']))[0, 0].numpy()
    assert prob.shape == ref.shape and prob.dtype == np.float32
    assert np.abs(prob - ref).max() <= 0.25 * 1e-3 * np.abs(io['instances']).max()


def test_unknown_zoom_in_option_is_an_input_error():
    with pytest.raises(InputError, match='zoom_in_params'):
        get_predictor(make_tiny_model(), 'NoBRS', 'cpu', zoom_in_params={'target_sise': 400})


def test_an_extreme_point_model_or_a_bad_device_is_refused_with_a_clear_error():
    from isegm.model.is_dextr_model import DextrModel
    with pytest.raises(InputError, match='extreme-point model, not a click model'):
        get_predictor(DextrModel().eval(), 'NoBRS', 'cpu')
    with pytest.raises(InputError, match='torch.nn.Module'):
        BasePredictor('model.pth', 'cpu')
    for device in ('tpu', 'banana'):
        with pytest.raises(InputError, match='device must be'):
            get_predictor(make_tiny_model(), 'NoBRS', device)
    if not torch.cuda.is_available():
        with pytest.raises(InputError, match='CUDA is not available'):
            get_predictor(make_tiny_model(), 'NoBRS', 'cuda')


def test_states_share_the_returned_map_instead_of_copying_it():
    """Undo history costs one image-size map per click, not three: the returned map, the previous prediction
    and ZoomIn's map are one read-only buffer, and later clicks leave a taken state unchanged."""
    net = make_tiny_model(with_prev_mask=True)
    image = make_image(300, 420, seed=2)
    predictor = BasePredictor(net, 'cpu', zoom_in=ZoomIn(target_size=160, min_crop_size=60))
    predictor.set_input_image(image)
    clicker = _clicker((True, 150, 200), shape=(300, 420))
    predictor.get_prediction(clicker)
    clicker.add_click(Click(False, (100, 150)))
    prob = predictor.get_prediction(clicker)
    states = predictor.get_states()
    zoom_state = states['transform_states'][0]
    assert np.shares_memory(prob, states['prev_prediction'].numpy())
    assert np.shares_memory(prob, zoom_state[2])
    assert not prob.flags.writeable
    with pytest.raises(ValueError):
        prob[0, 0] = 0.5
    kept = prob.copy()
    clicker.add_click(Click(True, (160, 210)))
    predictor.get_prediction(clicker)
    np.testing.assert_array_equal(states['prev_prediction'].numpy()[0, 0], kept)
    np.testing.assert_array_equal(zoom_state[2][0, 0], kept)


def test_a_returned_map_can_be_given_back_as_the_previous_mask(recwarn):
    net = make_tiny_model(with_prev_mask=True)
    image = make_image(100, 120, seed=3)
    results = []
    for as_copy in (False, True):
        predictor = BasePredictor(net, 'cpu')
        predictor.set_input_image(image)
        clicker = _clicker((True, 50, 60), shape=(100, 120))
        prob = predictor.get_prediction(clicker)
        clicker.add_click(Click(False, (20, 20)))
        results.append(predictor.get_prediction(clicker, prev_mask=prob.copy() if as_copy else prob))
    np.testing.assert_array_equal(results[0], results[1])
    assert not [w for w in recwarn if 'not writable' in str(w.message)]
