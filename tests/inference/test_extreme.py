"""ExtremePointsPredictor: batch API, input conversion and validation, geometry helpers."""
import numpy as np
import pytest
import torch

from isegm.errors import InputError
from isegm.utils.extreme_geometry import (crop_with_zero_pad, extreme_points_bbox, gaussian_heatmap,
                                      paste_crop_probability, points_to_crop_grid, rescale_to_range)
from isegm.inference.predictors.extreme import ExtremePointsPredictor, predict_masks, validate_extreme_points
from isegm.model.is_dextr_model import DextrModel

SIZE = 96  # small network input keeps every forward pass well under a second


@pytest.fixture(scope='module')
def plain_model():
    torch.manual_seed(0)
    return DextrModel().eval()


@pytest.fixture(scope='module')
def model(reference_weights, reference_dir):
    """DEXTR with the fixtures' deterministic weights: maps with structure, not all one value."""
    net = DextrModel()
    net.load_state_dict(reference_weights.reference_state_dict(
        reference_weights.load_schema(str(reference_dir / 'dextr' / 'schema.json'))))
    return net.eval()


@pytest.fixture(scope='module')
def image(reference_dir):
    return np.load(reference_dir / 'dextr' / 'pipeline.npz')['image']  # 371 x 513 x 3 uint8


LLAMA_YX = np.array([[122, 122], [203, 358], [116, 131], [370, 195]])  # (y, x): left, right, top, bottom


def test_predict_map_shape_range_and_support(model, image):
    predictor = ExtremePointsPredictor(model, input_size=SIZE)
    prob = predictor.predict(image, LLAMA_YX)
    assert prob.shape == image.shape[:2] and prob.dtype == np.float32
    assert 0 <= prob.min() and prob.max() <= 1
    assert (prob > 0.5).any() and (prob < 0.5).any()
    # Zero outside the box spanned by the points: rows 116..370, columns 122..358.
    outside = np.ones(prob.shape, bool)
    outside[116:371, 122:359] = False
    assert not prob[outside].any()


def test_batch_api_agrees_with_predict(model, image):
    grey = image[40:300, 100:450].mean(axis=2).astype(np.uint8)
    rgba = np.dstack([image[::-1], np.full(image.shape[:2], 255, np.uint8)])
    images = [image, grey, rgba, image]
    points = [
        np.stack([LLAMA_YX, [[100, 20], [150, 300], [30, 140], [220, 160]]]),
        np.array([[[60, 10], [90, 340], [5, 200], [250, 170]]]),
        LLAMA_YX,  # a single 4 x 2 array counts as one object
        np.zeros((0, 4, 2)),
    ]
    predictor = ExtremePointsPredictor(model, input_size=SIZE, batch_size=2, threshold=0.5)
    masks = predictor.predict_masks(images, points)
    assert [len(m) for m in masks] == [2, 1, 1, 0]
    probs = []
    for img, pts, img_masks in zip(images, points, masks):
        for obj, mask in zip(np.asarray(pts, float).reshape(-1, 4, 2), img_masks):
            prob = predictor.predict(img, obj)
            assert mask.dtype == bool and mask.shape == img.shape[:2]
            assert mask.any()
            sure = np.abs(prob - 0.5) > 1e-4
            np.testing.assert_array_equal(mask[sure], (prob > 0.5)[sure])
            probs.append(prob)
    assert len(probs) == 4
    # The functional form, here with DEXTR's threshold 0.8, one batch for both objects of the first image.
    functional = predict_masks(model, images[:1], points[:1], threshold=0.8, input_size=SIZE, batch_size=3)
    assert len(functional) == 1 and len(functional[0]) == 2
    for mask, prob, loose in zip(functional[0], probs, masks[0]):
        sure = np.abs(prob - 0.8) > 1e-4
        np.testing.assert_array_equal(mask[sure], (prob > 0.8)[sure])
        assert mask.sum() < loose.sum()


def test_grey_and_rgba_images_are_converted(plain_model, image):
    predictor = ExtremePointsPredictor(plain_model, input_size=SIZE)
    grey = image[..., 1].copy()
    expected = predictor.prepare(np.repeat(grey[:, :, None], 3, axis=2), LLAMA_YX).net_input
    np.testing.assert_array_equal(predictor.prepare(grey, LLAMA_YX).net_input, expected)
    rgba = np.dstack([image, np.zeros(image.shape[:2], np.uint8)])
    np.testing.assert_array_equal(predictor.prepare(rgba, LLAMA_YX).net_input,
                                  predictor.prepare(image, LLAMA_YX).net_input)


def test_points_outside_image_are_clipped(plain_model, image):
    predictor = ExtremePointsPredictor(plain_model, input_size=SIZE)
    outside = np.array([[150, -40.5], [200, 900], [-3, 250], [500, 260]])
    inside = np.array([[150, 0], [200, 512], [0, 250], [370, 260]])
    np.testing.assert_array_equal(validate_extreme_points(outside, image.shape[:2])[:, ::-1], inside)
    np.testing.assert_array_equal(predictor.predict(image, outside), predictor.predict(image, inside))


def test_fractional_points_are_truncated(image):
    pts = validate_extreme_points([[10.9, 20.2], [11, 30.999], [5.5, 25], [15, 24]], image.shape[:2])
    np.testing.assert_array_equal(pts, [[20, 10], [30, 11], [25, 5], [24, 15]])  # (x, y)


def test_clamped_crop_mode_stays_inside_image(plain_model, image):
    predictor = ExtremePointsPredictor(plain_model, input_size=SIZE, zero_pad_crop=False)
    sample = predictor.prepare(image, LLAMA_YX)
    assert sample.bbox == (72, 66, 408, 370)  # bottom clamped to the last row
    padded = ExtremePointsPredictor(plain_model, input_size=SIZE).prepare(image, LLAMA_YX)
    assert padded.bbox == (72, 66, 408, 420)
    prob = predictor.paste(sample, np.full((SIZE, SIZE), 0.9, np.float32))
    assert prob[116:371, 122:359].min() == pytest.approx(0.9, abs=1e-6)
    assert prob.sum() == pytest.approx(0.9 * 255 * 237, rel=1e-5)


@pytest.mark.parametrize('points', [
    np.zeros((3, 2)), np.zeros((4, 3)), np.zeros(8), [[1, 2], [3, 4], [5, 6], [7, np.nan]],
    [[1, 2], [3, 4], [5, 6], [7, np.inf]], [['a', 'b']] * 4, None])
def test_malformed_points_raise(plain_model, image, points):
    predictor = ExtremePointsPredictor(plain_model, input_size=SIZE)
    with pytest.raises(InputError):
        predictor.predict(image, points)


def test_empty_image_raises(plain_model):
    # An RGB uint8 array with no rows skipped the conversion and came back as an empty probability map.
    with pytest.raises(InputError, match='empty'):
        ExtremePointsPredictor(plain_model, input_size=SIZE).predict(np.zeros((0, 20, 3), np.uint8), LLAMA_YX)


@pytest.mark.parametrize('images, points', [
    ([np.zeros((20, 20, 3), np.uint8)], []),                            # counts differ
    ([np.zeros((20, 20, 5), np.uint8)], [LLAMA_YX]),                    # 5 channels
    (['not an image'], [LLAMA_YX]),                                     # not an array
    ([np.zeros((20, 20, 3), np.uint8)], [np.zeros((2, 4, 3))]),         # N x 4 x 3
    ([np.zeros((20, 20, 3), np.uint8)], [np.zeros((2, 5, 2))]),         # N x 5 x 2
    ([np.zeros((0, 20, 3), np.uint8)], [LLAMA_YX]),                     # no pixels (was a 0 x 20 "mask")
])
def test_malformed_batch_input_raises(plain_model, images, points):
    with pytest.raises(InputError):
        ExtremePointsPredictor(plain_model, input_size=SIZE).predict_masks(images, points)


def test_bad_settings_raise(plain_model):
    with pytest.raises(InputError):
        ExtremePointsPredictor(plain_model, threshold=1.5)
    with pytest.raises(InputError):
        ExtremePointsPredictor(plain_model, device='tpu')
    with pytest.raises(InputError):
        ExtremePointsPredictor('model.pth')
    with pytest.raises(InputError):
        ExtremePointsPredictor(plain_model, pad=-1)
    with pytest.raises(InputError, match='pad'):
        ExtremePointsPredictor(plain_model, pad='wide')
    with pytest.raises(InputError):
        ExtremePointsPredictor(plain_model).predict_masks([], [], threshold='high')
    if not torch.cuda.is_available():
        with pytest.raises(InputError, match='CUDA is not available'):
            ExtremePointsPredictor(plain_model, device='cuda:0')


def test_gaussian_heatmap_has_fwhm_sigma():
    heat = gaussian_heatmap((40, 60), np.array([[30, 20], [5, 5]]), sigma=10)
    assert heat.dtype == np.float64 and heat.shape == (40, 60)
    assert heat[20, 30] == 1.0 and heat[5, 5] == 1.0
    assert heat[20, 35] == pytest.approx(0.5)  # half maximum at sigma / 2 from the centre
    assert heat[20, 25] == pytest.approx(0.5)
    scaled = rescale_to_range(heat.astype(np.float32), 255)
    assert scaled.dtype == np.float32 and scaled.max() == 255 and scaled.min() == 0
    flat = rescale_to_range(np.full((3, 3), 7, np.float32), 255)
    assert not flat.any()


def test_crop_and_paste_geometry():
    img = np.arange(5 * 6 * 3, dtype=np.uint8).reshape(5, 6, 3)
    bbox = extreme_points_bbox(np.array([[1, 1], [4, 3]]), 2)  # (x, y) points
    assert bbox == (-1, -1, 6, 5)
    crop = crop_with_zero_pad(img, bbox)
    assert crop.shape == (7, 8, 3)
    np.testing.assert_array_equal(crop[1:6, 1:7], img)
    assert not crop[0].any() and not crop[:, 0].any() and not crop[6].any() and not crop[:, 7].any()
    assert extreme_points_bbox(np.array([[1, 1], [4, 3]]), 2, image_hw=(5, 6)) == (0, 0, 5, 4)
    # DEXTR's mapping into the network input: int(size * (p - bbox_min) / crop_size), per axis.
    grid = points_to_crop_grid(np.array([[1, 1], [4, 3]]), bbox, crop.shape[:2], 512)
    np.testing.assert_array_equal(grid, [[int(512 * 2 / 8), int(512 * 2 / 7)], [int(512 * 5 / 8), int(512 * 4 / 7)]])
    prob = paste_crop_probability(np.ones((16, 16), np.float32), bbox, (5, 6), keep_box=(1, 1, 4, 3))
    expected = np.zeros((5, 6), np.float32)
    expected[1:4, 1:5] = 1
    np.testing.assert_allclose(prob, expected, atol=1e-6)


def test_a_click_model_is_refused_with_a_clear_error():
    from tests.inference.tiny_model import make_tiny_model
    with pytest.raises(InputError, match='click model, not an extreme-point model'):
        ExtremePointsPredictor(make_tiny_model())
