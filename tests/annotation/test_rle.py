import numpy as np
import pytest
from pycocotools import mask as mask_utils

from isegm.annotation import rle
from isegm.errors import InputError


def _masks():
    rng = np.random.default_rng(0)
    yield np.zeros((7, 5), bool)
    yield np.ones((4, 9), bool)
    m = np.zeros((30, 40), bool)
    m[5:20, 10:33] = True
    m[8:12, 15:18] = False
    yield m
    yield rng.random((64, 48)) > 0.5
    yield rng.random((200, 300)) > 0.97       # long runs -> multi-group and negative deltas
    big = np.zeros((500, 700), bool)
    big[100:400, 50:650] = True
    yield big


@pytest.mark.parametrize('mask', list(_masks()))
def test_encode_matches_pycocotools(mask):
    ours = rle.encode(mask)
    theirs = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    assert ours['counts'] == theirs['counts'].decode('ascii')
    assert ours['size'] == list(theirs['size'])
    np.testing.assert_array_equal(mask_utils.decode(theirs).astype(bool), rle.decode(ours))
    # pycocotools decodes our string and our uncompressed counts alike
    np.testing.assert_array_equal(mask_utils.decode({'size': ours['size'], 'counts': ours['counts'].encode()}), mask)
    uncompressed = rle.encode(mask, compressed=False)
    frpy = mask_utils.frPyObjects(uncompressed, *uncompressed['size'])
    np.testing.assert_array_equal(mask_utils.decode(frpy).astype(bool), mask)
    assert rle.area(ours) == int(mask.sum()) == int(mask_utils.area(theirs))


def test_decode_pycocotools_string():
    mask = np.zeros((13, 17), np.uint8)
    mask[3:9, 2:15] = 1
    theirs = mask_utils.encode(np.asfortranarray(mask))
    np.testing.assert_array_equal(rle.decode(theirs), mask.astype(bool))


def test_damaged_rle_raises():
    good = rle.encode(np.ones((5, 5), bool), compressed=False)
    with pytest.raises(InputError, match='damaged'):
        rle.decode({'size': [5, 6], 'counts': good['counts']})
    with pytest.raises(InputError):
        rle.decode('not an rle')


def test_encode_matches_pycocotools_where_objects_touch_the_borders():
    """Counts are found inside the mask's bounding box: objects in corners, along edges, spanning the full
    height or width, single pixels and uint8 masks must still give pycocotools' exact string."""
    rng = np.random.default_rng(7)
    for i in range(1500):
        h, w = (int(v) for v in rng.integers(1, 13, 2))
        m = rng.random((h, w)) < rng.random()
        kind = i % 5
        if kind == 1:                            # a single pixel, often on an edge
            m[:] = False
            m[rng.choice([0, h - 1, rng.integers(h)]), rng.choice([0, w - 1, rng.integers(w)])] = True
        elif kind == 2:                          # full-height columns
            m[:] = False
            m[:, rng.integers(w):rng.integers(w) + 2] = True
        elif kind == 3:                          # bottom rows only
            m[:rng.integers(h + 1)] = False
        elif kind == 4:
            m = m.astype(np.uint8) * rng.integers(1, 256)
        theirs = mask_utils.encode(np.asfortranarray((m != 0).astype(np.uint8)))['counts'].decode('ascii')
        assert rle.encode(m)['counts'] == theirs, m
        assert sum(rle.mask_to_counts(m)) == h * w
