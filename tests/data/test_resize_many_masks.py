"""Resizing samples with more object masks than OpenCV takes channels at once (128 in OpenCV 5): the
crash that stopped the first bundled click-model training run (a BSDS/COCO image with > 128 regions)."""
import numpy as np
import pytest

from isegm.data.base import DSample
from isegm.data.transforms import Resize, _resize_masks


@pytest.mark.parametrize('k', [0, 1, 127, 128, 129, 300, 600])
def test_resize_masks_any_number_of_channels(k):
    rng = np.random.default_rng(k)
    masks = (rng.random((20, 30, k)) > 0.5).astype(np.uint8)
    out = _resize_masks(masks, (60, 40))
    assert out.shape == (40, 60, k)
    assert (out[::2, ::2] == masks).all()  # nearest neighbour, exact 2x upscale


def test_resize_transform_with_many_objects():
    image = np.zeros((32, 48, 3), np.uint8)
    labels = np.arange(32 * 48).reshape(32, 48) % 200 + 1  # 200 objects
    sample = DSample.from_label_map(image, labels)
    out = Resize(16, 24)(sample)
    assert out.image.shape == (16, 24, 3) and out.masks.shape == (16, 24, 200)
