"""Finished objects held as the content of their box: every operation equals the same on the full mask."""
import numpy as np
import pytest
from pycocotools import mask as mask_utils

from isegm.annotation import AnnotationDocument, rle
from isegm.annotation.box_mask import BoxMask
from isegm.annotation.export import mask_to_polygons
from isegm.annotation.render import blend_into, nearest_sampler
from isegm.errors import InputError


def random_masks(n, seed=0, max_side=14):
    """Small random masks of every kind: empty, full, single pixels, blobs touching each border."""
    rng = np.random.default_rng(seed)
    for i in range(n):
        h, w = (int(v) for v in rng.integers(1, max_side, 2))
        m = rng.random((h, w)) < rng.random()
        kind = i % 6
        if kind == 1:
            m[:] = False
            m[rng.integers(h), rng.integers(w)] = True
        elif kind == 2:
            m[:] = False
        elif kind == 3:
            m[:, rng.integers(w):] = True                          # reaches the right edge, full height
        elif kind == 4:
            m[:rng.integers(h + 1)] = False                         # bottom rows only
        elif kind == 5:
            m[:] = False
            y0, x0 = rng.integers(h), rng.integers(w)
            m[y0:y0 + rng.integers(1, h + 1), x0:x0 + rng.integers(1, w + 1)] = True
        yield m


def test_box_mask_holds_the_box_only_and_gives_the_full_mask_back():
    m = np.zeros((3000, 4000), bool)
    m[1200:1260, 2000:2100] = True
    m[1260, 2150] = True
    b = BoxMask.from_mask(m)
    assert b.crop.shape == (61, 151) and (b.y0, b.x0) == (1200, 2000)
    assert b.box == (2000, 1200, 2151, 1261) and b.nbytes == 61 * 151
    np.testing.assert_array_equal(b.to_array(), m)
    assert b.count() == int(m.sum()) and b.any()
    empty = BoxMask.from_mask(np.zeros((5, 7), np.uint8))
    assert not empty.any() and empty.box is None and empty.count() == 0 and empty.shape == (5, 7)
    np.testing.assert_array_equal(empty.to_array(), np.zeros((5, 7), bool))


def test_box_mask_is_immutable_and_independent_of_its_source():
    m = np.zeros((20, 30), bool)
    m[5:9, 4:12] = True
    b = BoxMask.from_mask(m)
    m[6, 6] = False                                                 # the source changes later
    assert b.crop[1, 2]
    with pytest.raises(ValueError):
        b.crop[0, 0] = False
    with pytest.raises(InputError):
        BoxMask((10, 10), 8, 8, np.ones((4, 4), bool))              # does not fit
    with pytest.raises(InputError):
        BoxMask((10, 10), 0, 0, np.ones((4, 4), np.uint8))


def test_window_take_minus_and_clear_equal_the_full_array_operations():
    rng = np.random.default_rng(1)
    masks = list(random_masks(300, seed=1))
    for m in masks:
        h, w = m.shape
        b = BoxMask.from_mask(m)
        np.testing.assert_array_equal(b.to_array(), m)
        y0, x0 = rng.integers(h), rng.integers(w)
        y1, x1 = rng.integers(y0, h + 1), rng.integers(x0, w + 1)
        np.testing.assert_array_equal(b.window(y0, y1, x0, x1), m[y0:y1, x0:x1])
        rows, cols = np.sort(rng.integers(0, h, rng.integers(1, 20))), np.sort(rng.integers(0, w, rng.integers(1, 20)))
        np.testing.assert_array_equal(b.take(rows, cols), m[np.ix_(rows, cols)])
        other = rng.random((h, w)) < rng.random()
        diff = b.minus(BoxMask.from_mask(other))
        np.testing.assert_array_equal(diff.to_array(), m & ~other)
        if diff.any():                                              # still tight
            assert diff.crop[0].any() and diff.crop[-1].any() and diff.crop[:, 0].any() and diff.crop[:, -1].any()
        full = other.copy()
        b.clear_from(full)
        np.testing.assert_array_equal(full, other & ~m)


def test_box_rle_equals_pycocotools_on_the_full_mask():
    for m in random_masks(1200, seed=2):
        b = BoxMask.from_mask(m)
        theirs = mask_utils.encode(np.asfortranarray(m.astype(np.uint8)))['counts'].decode('ascii')
        assert rle.encode_box(b.crop, b.y0, b.x0, b.shape)['counts'] == theirs, m
        assert rle.encode(m)['counts'] == theirs


def test_box_polygons_equal_the_full_mask_polygons():
    for m in random_masks(300, seed=3, max_side=40):
        assert mask_to_polygons(BoxMask.from_mask(m)) == mask_to_polygons(m), m


def test_blending_a_box_mask_equals_blending_the_full_mask():
    rng = np.random.default_rng(4)
    for m in random_masks(200, seed=4, max_side=30):
        image = rng.integers(0, 256, m.shape + (3,), dtype=np.uint8)
        a, b = image.copy(), image.copy()
        blend_into(a, m, (10, 200, 30), 0.4)
        blend_into(b, BoxMask.from_mask(m), (10, 200, 30), 0.4)
        np.testing.assert_array_equal(a, b)
        sampler = nearest_sampler((0, 0, m.shape[1], m.shape[0]), (int(rng.integers(1, 50)), int(rng.integers(1, 50))))
        np.testing.assert_array_equal(sampler.region(BoxMask.from_mask(m)), sampler(m))


def test_finished_objects_cost_their_box_not_the_image():
    """On a 24 MP document, a finished object holds a few kB (it held 24 MB as a full-size mask); overlaps
    and the instance map still come out as on full masks."""
    h, w = 4000, 6000
    doc = AnnotationDocument((h, w), history_bytes=None)
    first = np.zeros((h, w), np.float32)
    first[100:160, 200:300] = 1
    doc.set_initial_mask(first)
    a = doc.finish_object()
    second = np.zeros((h, w), np.float32)
    second[130:200, 250:400] = 1                                    # overlaps the first object
    doc.set_initial_mask(second)
    b = doc.finish_object()
    assert a.region.nbytes == 60 * 100 and b.region.nbytes == 70 * 150
    assert b.bbox == (250, 130, 150, 70) and b.area == 70 * 150 - 30 * 50
    assert doc.history_memory() < 2 * 96_000_000 + 100_000         # two draft maps, the objects are small
    inst = doc.instance_map()
    assert (inst == 1).sum() == 6000 and (inst == 2).sum() == b.area and inst[140, 260] == 1
    doc.reopen_object(a.id)
    doc.set_initial_mask(second)
    c = doc.finish_object(overwrite=True)                           # takes all of object 2's pixels
    assert c.id == a.id and c.bbox == (250, 130, 150, 70) and [o.id for o in doc.objects] == [a.id]
    doc.undo()
    third = np.zeros((h, w), np.float32)
    third[130:200, 250:300] = 1                                     # the left part of object 2
    doc.set_initial_mask(third)
    d = doc.finish_object(overwrite=True)
    left = doc.get_object(b.id)
    assert left.bbox == (300, 130, 100, 70) and left.region.nbytes == 70 * 100 and d.area == 70 * 50


def test_constructor_trims_a_loose_crop_and_copies_it():
    loose = np.zeros((10, 12), bool)
    loose[3:5, 2:9] = True
    b = BoxMask((40, 50), 7, 11, loose)
    assert (b.y0, b.x0, b.crop.shape) == (10, 13, (2, 7)) and b.box == (13, 10, 20, 12)
    assert not np.shares_memory(b.crop, loose)
    expected = np.zeros((40, 50), bool)
    expected[7:17, 11:23] = loose
    np.testing.assert_array_equal(b.to_array(), expected)
    assert not BoxMask((40, 50), 7, 11, np.zeros((10, 12), bool)).any()
