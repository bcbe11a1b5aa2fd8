"""GrabCut refinement of extreme-point masks: real OpenCV GrabCut on images made here, and the bundled model."""
import numpy as np
import pytest

from isegm.inference.grabcut_refine import MIN_AGREEMENT, refine_with_grabcut
from isegm.inference.predictors.extreme import ExtremePointsPredictor


def iou(a, b):
    return np.logical_and(a, b).sum() / np.logical_or(a, b).sum()


def cross_scene(h=220, w=260, scale=1, seed=0):
    """A red cross on a noisy blue background, and the map of a network that fills the box between its
    arms (0.6 in the corners, 0.95 on the cross, 0 outside the box spanned by the extreme points)."""
    rng = np.random.default_rng(seed)
    h, w = h * scale, w * scale
    image = np.zeros((h, w, 3), np.float32)
    image[:] = (40, 60, 200)
    y0, y1, x0, x1 = 40 * scale, 180 * scale, 60 * scale, 200 * scale
    arm = 30 * scale
    cy, cx = (y0 + y1) // 2, (x0 + x1) // 2
    gt = np.zeros((h, w), bool)
    gt[y0:y1, cx - arm:cx + arm] = True
    gt[cy - arm:cy + arm, x0:x1] = True
    image[gt] = (210, 50, 40)
    image = np.clip(image + rng.normal(0, 12, image.shape), 0, 255).astype(np.uint8)
    prob = np.zeros((h, w), np.float32)
    prob[y0:y1, x0:x1] = 0.6
    prob[gt] = 0.95
    points_xy = np.array([[x0, cy], [x1 - 1, cy], [cx, y0], [cx, y1 - 1]])
    return image, prob, points_xy, gt


def test_refinement_removes_background_between_the_points():
    image, prob, points, gt = cross_scene()
    net = prob > 0.5
    refined = refine_with_grabcut(image, prob, points)
    assert iou(net, gt) < 0.75
    assert iou(refined, gt) > 0.97
    assert not refined[prob == 0].any()                     # nothing outside the points' box
    assert all(refined[y, x] for x, y in points)            # the extreme points stay object


def test_refinement_is_deterministic_and_large_crops_are_scaled():
    image, prob, points, gt = cross_scene()
    a = refine_with_grabcut(image, prob, points)
    np.testing.assert_array_equal(a, refine_with_grabcut(image, prob, points))
    big_image, big_prob, big_points, big_gt = cross_scene(scale=5)     # crop side 740 > MAX_SIDE
    refined = refine_with_grabcut(big_image, big_prob, big_points)
    assert refined.shape == big_gt.shape and iou(refined, big_gt) > 0.95


def test_network_mask_kept_when_grabcut_disagrees_or_cannot_run():
    image, prob, points, gt = cross_scene()
    # object and background of one colour: GrabCut would cut by noise; whatever it returns must agree
    # with the network's mask at least MIN_AGREEMENT, else the network's mask comes back unchanged
    grey = np.random.default_rng(1).integers(100, 110, image.shape, dtype=np.uint8)
    net = prob > 0.5
    out = refine_with_grabcut(grey, prob, points)
    assert out is net or iou(out, net) >= MIN_AGREEMENT
    # a map that is confident everywhere in the box leaves GrabCut only object seeds near the points
    full = np.zeros_like(prob)
    full[:] = 0.99
    np.testing.assert_array_equal(refine_with_grabcut(image, full, points), full > 0.5)
    empty = np.zeros_like(prob)
    assert not refine_with_grabcut(image, empty, points).any()


def test_predictor_uses_the_model_setting():
    import isegm
    from isegm.utils.extreme_geometry import extreme_points_from_mask
    model = isegm.load_model('isegm_compact_extreme')
    assert model.grabcut_refine                                   # the bundled model asks for it
    image, _, _, gt = cross_scene()
    points_yx = extreme_points_from_mask(gt)
    on = ExtremePointsPredictor(model)
    off = ExtremePointsPredictor(model, grabcut_refine=False)
    assert on.grabcut_refine and not off.grabcut_refine
    prob = off.predict(image, points_yx)
    np.testing.assert_array_equal(off.predict_mask(image, points_yx), prob > off.threshold)
    refined = on.predict_mask(image, points_yx)
    from isegm.inference.predictors.extreme import validate_extreme_points
    expected = refine_with_grabcut(image, prob, validate_extreme_points(points_yx, gt.shape), on.threshold)
    np.testing.assert_array_equal(refined, expected)
    batch = on.predict_masks([image, image], [points_yx, np.stack([points_yx, points_yx])])
    assert [len(b) for b in batch] == [1, 2]
    for mask in (batch[0][0], batch[1][0], batch[1][1]):
        np.testing.assert_array_equal(mask, refined)
    assert iou(refined, gt) >= iou(prob > off.threshold, gt) - 0.01


def test_dextr_models_are_not_refined_by_default():
    from isegm.model.is_dextr_model import DextrModel
    assert not ExtremePointsPredictor(DextrModel(), input_size=64).grabcut_refine
