"""The canvas's view renderer: only the visible part, at screen resolution, matching the full overlay."""
import tracemalloc

import cv2
import numpy as np
import pytest

from isegm.annotation import AnnotationDocument, ClickRecord
from isegm.annotation.render import (DRAFT_COLOR, POSITIVE_COLOR, ViewRenderer, blend_mask, nearest_sampler,
                                     render_overlay)


def textured(h, w, seed=0):
    """A blocky random image (resampling it must keep blocks recognisable)."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (h // 8 + 1, w // 8 + 1, 3), dtype=np.uint8)
    return np.ascontiguousarray(np.repeat(np.repeat(small, 8, 0), 8, 1)[:h, :w])


def disk(shape, cy, cx, r):
    yy, xx = np.ogrid[:shape[0], :shape[1]]
    return ((yy - cy) ** 2 + (xx - cx) ** 2) <= r * r


def annotated(h, w):
    doc = AnnotationDocument((h, w))
    for cy, cx, r in ((h * 0.3, w * 0.3, min(h, w) * 0.15), (h * 0.6, w * 0.7, min(h, w) * 0.2)):
        doc.set_initial_mask(disk((h, w), cy, cx, r).astype(np.float32))
        doc.finish_object()
    doc.set_initial_mask(disk((h, w), h * 0.7, w * 0.3, min(h, w) * 0.1).astype(np.float32), as_prev_mask=False)
    doc.paint([(h * 0.1, w * 0.8)], radius=max(2, min(h, w) // 30))
    return doc


def view(renderer, doc, box, out_size, **kw):
    return renderer.render(box, out_size, doc.visible_objects(), draft_mask=lambda s: doc.current_mask(view=s), **kw)


def test_view_at_scale_one_equals_the_full_overlay_inside_the_box():
    h, w = 120, 160
    img, doc = textured(h, w), annotated(h, w)
    full = render_overlay(img, doc.visible_objects(), draft_mask=doc.current_mask())
    box = (17, 9, 141, 103)
    out = view(ViewRenderer(img), doc, box, (box[2] - box[0], box[3] - box[1]))
    crop = full[box[1]:box[3], box[0]:box[2]]
    # mask borders are drawn where the view ends too: compare everything but the outermost ring
    np.testing.assert_array_equal(out[1:-1, 1:-1], crop[1:-1, 1:-1])


def test_zoomed_in_view_shows_whole_image_pixels():
    img = textured(64, 80)
    r = ViewRenderer(img)
    out = r.render((10, 20, 30, 36), (80, 64), ())        # 4x zoom
    np.testing.assert_array_equal(out, np.repeat(np.repeat(img[20:36, 10:30], 4, 0), 4, 1))


@pytest.mark.parametrize('out_size', [(400, 300), (333, 250), (97, 61)])
def test_reduced_view_follows_the_image_and_the_masks(out_size):
    h, w = 1200, 1600
    img, doc = textured(h, w, seed=3), annotated(h, w)
    r = ViewRenderer(img)
    box = (0, 0, w, h)
    plain = r.render(box, out_size, ())
    assert plain.shape == (out_size[1], out_size[0], 3) and plain.dtype == np.uint8
    # the reduced image is the area average of the image, up to interpolation (picking single pixels of
    # this 8-pixel block noise instead: mean error 40-55)
    ref = cv2.resize(img, out_size, interpolation=cv2.INTER_AREA).astype(np.float32)
    assert np.abs(plain.astype(np.float32) - ref).mean() < 20, 'the view does not look like the image'
    shown = view(r, doc, box, out_size)
    sample = nearest_sampler(box, out_size)
    for obj in doc.visible_objects():
        inside = sample(obj.mask)
        core = cv2.erode(inside.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)   # no border pixels
        expected = np.clip(plain[core].astype(np.float32) * (1.0 - 0.5) + np.asarray(obj.color, np.float32) * 0.5,
                           0, 255).astype(np.uint8)
        np.testing.assert_array_equal(shown[core], expected)
    untouched = ~(sample(doc.instance_map() > 0) | doc.current_mask(view=sample))
    untouched = cv2.erode(untouched.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    np.testing.assert_array_equal(shown[untouched], plain[untouched])
    draft_core = doc.current_mask(view=sample) & ~sample(doc.instance_map() > 0)
    draft_core = cv2.erode(draft_core.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    assert draft_core.any()
    assert np.abs(shown[draft_core].astype(int).mean(0) - plain[draft_core].astype(int).mean(0) * 0.5
                  - np.array(DRAFT_COLOR) * 0.5).max() < 3


def test_current_mask_in_a_view_is_the_view_of_the_current_mask():
    h, w = 90, 130
    doc = annotated(h, w)
    doc.add_click(int(h * 0.7), int(w * 0.3), True)      # clicks without a prediction yet keep the base
    doc.paint([(5, 5), (30, 40)], radius=4, erase=True)
    sample = nearest_sampler((13, 7, 120, 88), (53, 40))
    np.testing.assert_array_equal(doc.current_mask(view=sample), sample(doc.current_mask()))
    empty = AnnotationDocument((h, w))
    assert empty.current_mask(view=sample).shape == (40, 53) and not empty.current_mask(view=sample).any()


def test_click_markers_have_a_screen_radius_at_their_pixel():
    img = np.zeros((3000, 4000, 3), np.uint8)
    r = ViewRenderer(img)
    click = ClickRecord(1500, 2000, True)
    out = r.render((0, 0, 4000, 3000), (400, 300), (), clicks=[click], click_radius=5)
    green = np.all(out == POSITIVE_COLOR, axis=-1)
    ys, xs = np.nonzero(green)
    assert abs(ys.mean() - 150) <= 1 and abs(xs.mean() - 200) <= 1
    assert 3 <= (xs.max() - xs.min()) / 2 <= 5       # 5 screen pixels (0.5 at this scale in image pixels)


def test_a_view_of_a_large_image_allocates_screen_sized_memory():
    h, w = 3000, 4500                                    # 40 MB of RGB; each object mask 13.5 MB
    img, doc = textured(h, w), annotated(h, w)
    r = ViewRenderer(img)
    view(r, doc, (0, 0, w, h), (600, 400))              # builds the pyramid once
    tracemalloc.start()
    try:
        for box in ((0, 0, w, h), (1000, 500, 2600, 1600), (100, 100, 400, 300)):
            out = view(r, doc, box, (600, 400))
            assert out.shape == (400, 600, 3)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8e6, f'a redraw allocated {peak / 1e6:.1f} MB: it works at image resolution'


def test_full_overlay_blends_inside_the_mask_box_only_and_keeps_the_input():
    img = textured(50, 70)
    mask = disk((50, 70), 25, 35, 10)
    before = img.copy()
    out = blend_mask(img, mask, (10, 200, 30), 0.4)
    np.testing.assert_array_equal(img, before)
    np.testing.assert_array_equal(out[~mask], img[~mask])
    inner = cv2.erode(mask.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    expected = np.clip(img[inner].astype(np.float32) * (1.0 - 0.4) + np.array([10, 200, 30], np.float32) * 0.4,
                       0, 255).astype(np.uint8)
    np.testing.assert_array_equal(out[inner], expected)
    assert np.all(out[mask & ~inner] == (10, 200, 30))          # the border in the plain colour


@pytest.mark.parametrize('alpha', [0.0, 0.25, 0.5, 0.73, 1.0])
@pytest.mark.parametrize('border', [True, False])
def test_blend_gives_the_per_pixel_formula_exactly(alpha, border):
    """The table-driven blend equals trunc(v * (1 - alpha) + colour * alpha) in float32 pixel by pixel,
    for masks that touch the image border and several blobs, with the border drawn in the plain colour."""
    rng = np.random.default_rng(int(alpha * 100) + border)
    img = rng.integers(0, 256, (90, 120, 3), dtype=np.uint8)
    mask = cv2.dilate((rng.random((90, 120)) > 0.995).astype(np.uint8), np.ones((15, 15), np.uint8)).astype(bool)
    mask[:5, 100:] = True                                   # touches the top and right edges
    colour = tuple(int(c) for c in rng.integers(0, 256, 3))
    out = blend_mask(img, mask, colour, alpha, border=border)
    expected = img.copy()
    expected[mask] = np.clip(img[mask].astype(np.float32) * (1.0 - alpha) + np.asarray(colour, np.float32) * alpha,
                             0, 255).astype(np.uint8)
    if border:
        m8 = mask.astype(np.uint8)
        inner = cv2.erode(m8, np.ones((3, 3), np.uint8))    # outside the image counts as mask: no edge there
        expected[(m8 - inner).astype(bool)] = colour
    np.testing.assert_array_equal(out, expected)


def test_bad_view_boxes_are_refused():
    r = ViewRenderer(textured(20, 30))
    with pytest.raises(ValueError, match='no pixels'):
        r.render((40, 0, 50, 10), (10, 10), ())
    with pytest.raises(ValueError, match='positive'):
        r.render((0, 0, 10, 10), (0, 10), ())
