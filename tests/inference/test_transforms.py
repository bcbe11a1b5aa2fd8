"""Test-time transforms: flip, longest-side limit, sigmoid, ZoomIn state handling."""
import pytest
import torch

from isegm.errors import InputError
from isegm.inference.clicker import Click
from isegm.inference.transforms import AddHorizontalFlip, LimitLongestSide, SigmoidForPred, ZoomIn


def _clicks():
    return [Click(True, (3, 5), indx=0), Click(False, (10, 0), indx=1), Click(True, (7.5, 19), indx=2)]


def test_flip_batch_and_clicks():
    torch.manual_seed(0)
    image = torch.rand(1, 4, 12, 20)
    flip = AddHorizontalFlip()
    out, clicks_lists = flip.transform(image, [_clicks()])
    assert out.shape == (2, 4, 12, 20)
    assert torch.equal(out[0], image[0]) and torch.equal(out[1], image[0].flip(-1))
    assert [c.coords for c in clicks_lists[1]] == [(3, 14), (10, 19), (7.5, 0)]
    assert [c.indx for c in clicks_lists[1]] == [0, 1, 2]
    # mirroring the mirrored clicks gives the original clicks back
    _, again = flip.transform(out[1:], [clicks_lists[1]])
    assert [c.coords for c in again[1]] == [c.coords for c in _clicks()]


def test_flip_inverse_averages_and_keeps_symmetric_maps():
    flip = AddHorizontalFlip()
    a = torch.rand(1, 1, 6, 8)
    b = torch.rand(1, 1, 6, 8)
    out = flip.inv_transform(torch.cat([a, b]))
    assert torch.allclose(out, 0.5 * (a + b.flip(-1)))
    sym = torch.rand(1, 1, 6, 4)
    sym = torch.cat([sym, sym.flip(-1)], dim=3)            # left-right symmetric
    image, _ = flip.transform(sym, [[]])
    assert torch.equal(flip.inv_transform(image), sym)
    with pytest.raises(InputError):
        flip.inv_transform(torch.rand(3, 1, 4, 4))


def test_sigmoid_transform():
    t = SigmoidForPred()
    x = torch.randn(1, 1, 3, 3)
    assert t.transform(x, [[]])[0] is x
    assert torch.allclose(t.inv_transform(x), torch.sigmoid(x))


def test_limit_longest_side_small_image_passes_through():
    t = LimitLongestSide(max_size=100)
    image = torch.rand(1, 3, 40, 100)
    out, clicks = t.transform(image, [_clicks()])
    assert out is image and not t.image_changed
    pred = torch.rand(1, 1, 40, 100)
    assert t.inv_transform(pred) is pred


def test_limit_longest_side_resizes_and_restores():
    h, w = 300, 1000
    ramp = torch.linspace(0, 1, w)[None, None, None, :].expand(1, 3, h, w).contiguous()
    t = LimitLongestSide(max_size=400)
    out, clicks_lists = t.transform(ramp, [[Click(True, (150, 500), indx=0), Click(False, (299, 999), indx=1)]])
    assert out.shape == (1, 3, 120, 400) and t.image_changed
    assert clicks_lists[0][0].coords == (120 * 150 / 300, 400 * 500 / 1000)
    assert clicks_lists[0][1].coords[0] < 120 and clicks_lists[0][1].coords[1] < 400
    back = t.inv_transform(out[:, :1])
    assert back.shape == (1, 1, h, w)
    assert torch.allclose(back, ramp[:, :1], atol=1e-5)   # bilinear resizing is exact on a linear ramp
    state = t.get_state()
    t.reset()
    assert t.inv_transform(out[:, :1]).shape == (1, 1, 120, 400)
    t.set_state(state)
    assert t.inv_transform(out[:, :1]).shape == (1, 1, h, w)


def _blob_probs(h, w, box):
    p = torch.zeros(1, 1, h, w)
    r0, r1, c0, c1 = box
    p[:, :, r0:r1, c0:c1] = 0.9
    return p


def test_zoom_in_skips_first_click_and_crops_on_second():
    image = torch.rand(1, 4, 300, 500)
    zoom = ZoomIn()
    out, clicks = zoom.transform(image, [[Click(True, (150, 250), indx=0)]])
    assert out is image and zoom.object_roi is None
    zoom.inv_transform(_blob_probs(300, 500, (120, 180, 220, 280)))

    out, clicks = zoom.transform(image, [[Click(True, (150, 250), indx=0), Click(False, (160, 260), indx=1)]])
    rmin, rmax, cmin, cmax = zoom.object_roi
    assert zoom.image_changed
    assert rmax - rmin + 1 >= 200 and cmax - cmin + 1 >= 200   # min_crop_size
    assert max(out.shape[2:]) == 400
    back = zoom.inv_transform(torch.ones(1, 1, *out.shape[2:]))
    assert back.shape == (1, 1, 300, 500)
    assert back[0, 0, rmin:rmax + 1, cmin:cmax + 1].min() == 1 and back.sum() == (rmax - rmin + 1) * (cmax - cmin + 1)


def test_zoom_in_empty_prediction_drops_the_crop():
    image = torch.rand(1, 3, 300, 500)
    zoom = ZoomIn()
    clicks = [Click(True, (150, 250), indx=0)]
    zoom.transform(image, [clicks])
    zoom.inv_transform(_blob_probs(300, 500, (120, 180, 220, 280)))
    clicks.append(Click(False, (150, 250), indx=1))
    zoom.transform(image, [clicks])
    assert zoom.object_roi is not None
    zoom.inv_transform(torch.zeros(1, 1, *zoom._roi_image.shape[2:]))   # the object vanished
    clicks.append(Click(True, (20, 20), indx=2))
    out, _ = zoom.transform(image, [clicks])
    assert out is image and zoom.object_roi is None and zoom.image_changed
    pred = torch.rand(1, 1, 300, 500)
    assert torch.equal(zoom.inv_transform(pred), pred)


def test_zoom_in_state_round_trip_and_reset():
    image = torch.rand(1, 3, 300, 500)
    zoom = ZoomIn()
    clicks = [Click(True, (150, 250), indx=0)]
    zoom.transform(image, [clicks])
    zoom.inv_transform(_blob_probs(300, 500, (120, 180, 220, 280)))
    state = zoom.get_state()
    clicks2 = clicks + [Click(True, (155, 255), indx=1)]
    zoom.transform(image, [clicks2])
    roi = zoom.object_roi
    zoom.reset()
    assert zoom.object_roi is None
    zoom.set_state(state)
    zoom.transform(image, [clicks2])
    assert zoom.object_roi == roi


def test_zoom_in_recalculation_check_only_without_skip():
    zoom = ZoomIn(skip_clicks=-1)
    image = torch.rand(1, 3, 600, 600)
    zoom.transform(image, [[Click(True, (10, 10), indx=0)]])     # no previous map: no crop yet
    assert zoom.object_roi == (0, 599, 0, 599)
    zoom2 = ZoomIn(skip_clicks=0)
    zoom2.transform(image, [[Click(True, (10, 10), indx=0)]])
    zoom2.inv_transform(_blob_probs(600, 600, (0, 20, 0, 20)))
    assert zoom2.check_possible_recalculation()
    assert not ZoomIn(skip_clicks=1).check_possible_recalculation()


def test_resizing_keeps_one_pixel_of_a_very_thin_image():
    # 5000 x 3 scaled to a longer side of 400 rounds the short side to 0: torch then refused to resize.
    image = torch.rand(1, 3, 5000, 3)
    zoom = ZoomIn(skip_clicks=-1)
    out, clicks = zoom.transform(image, [[Click(True, (2500, 1), indx=0)]])
    assert out.shape == (1, 3, 400, 1) and 0 <= clicks[0][0].coords[1] < 1
    assert zoom.inv_transform(torch.rand(1, 1, 400, 1)).shape == (1, 1, 5000, 3)
    limit = LimitLongestSide(max_size=1)
    out, _ = limit.transform(torch.rand(1, 3, 1, 1000), [[Click(True, (0, 500), indx=0)]])
    assert out.shape == (1, 3, 1, 1)
    assert limit.inv_transform(torch.rand(1, 1, 1, 1)).shape == (1, 1, 1, 1000)


@pytest.mark.parametrize('target_size', [0, -5, (0, 400), 0.5, float('nan'), (400,), '400'])
def test_zoom_in_rejects_a_non_positive_target_size(target_size):
    with pytest.raises(InputError, match='target_size'):
        ZoomIn(target_size=target_size)


def test_zoom_in_takes_a_float_target_size():
    image = torch.rand(1, 3, 300, 600)
    for target, shape in ((400.0, (200, 400)), ((200.0, 300.0), (200, 300))):
        zoom = ZoomIn(target_size=target, skip_clicks=-1)
        out, _ = zoom.transform(image, [[Click(True, (150, 300), indx=0)]])
        assert tuple(out.shape[2:]) == shape
