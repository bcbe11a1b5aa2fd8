import numpy as np
import pytest

from isegm.annotation import AnnotationDocument, AnnotationStateError, ClickRecord
from isegm.errors import InputError

H, W = 40, 60


def disk(cy, cx, r, value=1.0):
    yy, xx = np.mgrid[:H, :W]
    return (((yy - cy) ** 2 + (xx - cx) ** 2) <= r * r).astype(np.float32) * value


def predict(doc, prob):
    """Play the controller: take the request, hand back a map."""
    req = doc.prediction_request()
    assert req is not None
    assert doc.set_prediction(req, prob, engine_state={'n': len(req.clicks)})
    return req


def test_clicks_prediction_and_undo_redo():
    doc = AnnotationDocument((H, W))
    assert doc.prediction_request() is None
    doc.add_click(10, 20, True)
    req = doc.prediction_request()
    assert req.clicks == (ClickRecord(10, 20, True),) and req.prev_mask is None and req.engine_state is None
    doc.set_prediction(req, disk(10, 20, 5), engine_state='s1')
    assert doc.current_mask().sum() == disk(10, 20, 5).sum()
    doc.add_click(30, 50, False)
    req2 = doc.prediction_request()
    np.testing.assert_array_equal(req2.prev_mask, disk(10, 20, 5))   # ITER-M: previous map goes in
    assert req2.engine_state == 's1'
    doc.set_prediction(req2, disk(10, 20, 8), engine_state='s2')
    assert doc.current_mask().sum() == disk(10, 20, 8).sum()
    assert doc.undo()
    assert len(doc.draft.clicks) == 1 and doc.draft.engine_state == 's1'
    assert doc.current_mask().sum() == disk(10, 20, 5).sum()
    assert doc.redo()
    assert len(doc.draft.clicks) == 2 and doc.draft.engine_state == 's2'
    assert doc.undo() and doc.undo()
    assert doc.draft.is_empty and not doc.undo()
    assert doc.redo() and doc.draft.clicks == (ClickRecord(10, 20, True),)
    doc.add_click(1, 1, True)          # a new command clears the redo stack
    assert not doc.can_redo


def test_stale_prediction_is_ignored_latest_state_wins():
    doc = AnnotationDocument((H, W))
    doc.add_click(10, 10, True)
    req1 = doc.prediction_request()
    doc.add_click(20, 20, True)          # clicked while the first prediction runs
    # first result still useful: it fits the older prefix, the draft still needs a prediction
    assert doc.set_prediction(req1, disk(10, 10, 3))
    assert doc.draft.needs_prediction
    req2 = doc.prediction_request()
    assert len(req2.clicks) == 2
    doc.undo()                            # user undoes the second click before its result arrives
    assert not doc.set_prediction(req2, disk(20, 20, 3))
    assert doc.current_mask().sum() == disk(10, 10, 3).sum()
    # a result of another session is ignored
    doc.finish_object()
    doc.add_click(5, 5, True)
    assert not doc.set_prediction(req1, disk(10, 10, 9))


def test_click_outside_image_raises():
    doc = AnnotationDocument((H, W))
    with pytest.raises(InputError, match='outside'):
        doc.add_click(H, 3, True)
    with pytest.raises(InputError, match='outside'):
        doc.add_click(3, -1, False)
    assert doc.draft.is_empty and not doc.can_undo


def test_fractional_click_maps_to_the_pixel_containing_it():
    # Pixel k spans [k, k + 1) on the canvas: the right half of the last row/column was rejected as
    # "outside" (rounded to H), and a point just left of the image was accepted as pixel 0.
    doc = AnnotationDocument((H, W))
    assert doc.add_click(H - 0.4, W - 0.1, True) == ClickRecord(H - 1, W - 1, True)
    assert doc.add_click(10.7, 3.5, False) == ClickRecord(10, 3, False)
    for y, x in [(-0.4, 3), (3, -0.01), (float('nan'), 3), (3, float('inf')), ('a', 3), (None, 3)]:
        with pytest.raises(InputError):
            doc.add_click(y, x, True)
    assert len(doc.draft.clicks) == 2


def test_brush_rejects_non_finite_input_and_clamps_a_huge_radius():
    doc = AnnotationDocument((H, W))
    for points, radius in [([(float('nan'), 1)], 3), ([(1, 1)], float('nan')), ([(1, 1)], float('inf'))]:
        with pytest.raises(InputError):
            doc.paint(points, radius)
    assert not doc.can_undo
    doc.paint([(1, 1)], radius=1e6)            # wider than OpenCV's line limit: covers the image
    assert doc.current_mask().all()
    doc.paint([(1e18, 1e18), (-1e18, 5)], radius=2, erase=True)   # far outside: int32 overflow before
    assert doc.can_undo


def test_brush_point_maps_to_the_pixel_containing_it():
    doc = AnnotationDocument((H, W))
    doc.paint([(2.9, 3.9)], radius=0.4)        # inside pixel (2, 3); rounding centred the dab on (3, 4)
    mask = doc.current_mask()
    assert mask[2, 3] and mask[1, 3] and mask[2, 2] and not mask[3, 4] and mask.sum() == 5


def test_finish_reopen_delete_rename():
    doc = AnnotationDocument((H, W))
    doc.add_click(10, 10, True)
    predict(doc, disk(10, 10, 6))
    a = doc.finish_object()
    assert a.id == 1 and a.area == int(disk(10, 10, 6).sum()) and a.clicks == (ClickRecord(10, 10, True),)
    assert doc.draft.is_empty and doc.is_modified
    # second object overlapping the first: by default it does not take the first one's pixels
    doc.add_click(10, 16, True)
    predict(doc, disk(10, 16, 6))
    b = doc.finish_object()
    assert b.id == 2
    assert not (doc.get_object(1).mask & doc.get_object(2).mask).any()
    assert doc.get_object(1).area == a.area
    inst = doc.instance_map()
    assert inst.dtype == np.uint8 and set(np.unique(inst)) == {0, 1, 2}
    # reopen the first object, grow it with overwrite on: it takes pixels from the second
    doc.reopen_object(1)
    np.testing.assert_array_equal(doc.draft.init_mask, a.mask.astype(np.float32))
    assert [o.id for o in doc.visible_objects()] == [2]
    with pytest.raises(AnnotationStateError):
        doc.reopen_object(2)
    doc.add_click(10, 12, True)
    req = doc.prediction_request()
    np.testing.assert_array_equal(req.prev_mask, a.mask.astype(np.float32))
    assert req.click_indx_offset == 1
    doc.set_prediction(req, disk(10, 12, 9))
    a2 = doc.finish_object(overwrite=True)
    assert a2.id == 1 and a2.area == int(disk(10, 12, 9).sum())
    assert [o.id for o in doc.objects] == [1, 2]            # order kept
    assert doc.get_object(2).area == int((disk(10, 16, 6).astype(bool) & ~a2.mask).sum())
    doc.rename_object(2, 'cat')
    assert doc.get_object(2).label == 'cat'
    with pytest.raises(InputError):
        doc.rename_object(2, '  ')
    doc.delete_object(1)
    assert [o.id for o in doc.objects] == [2]
    doc.undo()
    assert [o.id for o in doc.objects] == [1, 2]
    doc.undo()
    assert doc.get_object(2).label == 'object'
    with pytest.raises(InputError):
        doc.delete_object(99)


def test_empty_finish_and_reset():
    doc = AnnotationDocument((H, W))
    assert doc.finish_object() is None
    doc.add_click(5, 5, True)
    predict(doc, np.zeros((H, W), np.float32))
    assert doc.finish_object() is None and len(doc.objects) == 0
    doc.reset_clicks()
    assert doc.draft.is_empty
    doc.undo()
    assert len(doc.draft.clicks) == 1


def test_threshold_controls_mask():
    doc = AnnotationDocument((H, W), prob_thresh=0.5)
    doc.add_click(20, 30, True)
    prob = np.full((H, W), 0.3, np.float32)
    prob[10:20, 10:20] = 0.7
    predict(doc, prob)
    assert doc.current_mask().sum() == 100
    assert doc.current_mask(0.2).sum() == H * W
    doc.prob_thresh = 0.8
    assert doc.finish_object() is None


def test_partially_finish_combines_sessions():
    doc = AnnotationDocument((H, W))
    doc.add_click(10, 10, True)
    predict(doc, disk(10, 10, 4))
    assert doc.partially_finish()
    assert doc.draft.clicks == () and doc.prediction_request() is None
    doc.add_click(30, 45, True)
    req = doc.prediction_request()
    assert req.prev_mask is None and req.engine_state is None     # fresh session, as RITM resets the predictor
    doc.set_prediction(req, disk(30, 45, 4))
    mask = doc.current_mask()
    assert mask.sum() == disk(10, 10, 4).sum() + disk(30, 45, 4).sum()
    obj = doc.finish_object()
    assert len(obj.clicks) == 2


def test_brush_and_eraser():
    doc = AnnotationDocument((H, W))
    doc.add_click(20, 30, True)
    predict(doc, disk(20, 30, 10))
    before = doc.current_mask().copy()
    doc.paint([(2, 2), (2, 20)], radius=2)
    after = doc.current_mask()
    assert after[2, 2] and after[2, 20] and after[2, 11] and not before[2, 11]
    doc.paint([(20, 30)], radius=3, erase=True)
    assert not doc.current_mask()[20, 30] and doc.current_mask()[20, 36]
    # brush edits go into the previous mask of the next click
    doc.add_click(25, 30, False)
    req = doc.prediction_request()
    assert req.prev_mask[2, 11] == 1.0 and req.prev_mask[20, 30] == 0.0
    doc.set_prediction(req, disk(20, 30, 10))
    # edits persist over later predictions
    assert doc.current_mask()[2, 11] and not doc.current_mask()[20, 30]
    doc.undo(); doc.undo()
    assert doc.current_mask()[20, 30]
    with pytest.raises(InputError):
        doc.paint([(1, 1)], radius=0)
    # painting on an empty draft makes an object from the brush alone
    doc2 = AnnotationDocument((H, W))
    doc2.paint([(5, 5)], radius=2)
    assert doc2.finish_object().area > 0


def test_initial_mask_and_extreme_points():
    doc = AnnotationDocument((H, W))
    ext = np.zeros((H, W), np.uint8)
    ext[5:25, 5:35] = 255
    doc.set_initial_mask(ext, extreme_points=[(15, 5), (15, 34), (5, 20), (24, 20)])
    assert doc.current_mask().sum() == 20 * 30
    doc.add_click(30, 30, True)
    req = doc.prediction_request()
    np.testing.assert_array_equal(req.prev_mask, (ext / 255).astype(np.float32))
    doc.set_prediction(req, disk(20, 20, 12))
    obj = doc.finish_object()
    assert obj.extreme_points == ((15, 5), (15, 34), (5, 20), (24, 20))
    # non-ITER-M: the loaded mask is kept as a base that clicks add to
    doc.set_initial_mask(ext > 0, as_prev_mask=False)
    doc.add_click(35, 55, True)
    req = doc.prediction_request()
    assert req.prev_mask is None
    doc.set_prediction(req, disk(35, 55, 3))
    assert doc.current_mask().sum() == 600 + disk(35, 55, 3).sum()
    with pytest.raises(InputError, match='image size'):
        doc.set_initial_mask(np.zeros((H + 1, W)))


def test_unsaved_tracking():
    doc = AnnotationDocument((H, W))
    assert not doc.has_unsaved_work
    doc.add_click(1, 1, True)
    assert doc.has_unsaved_work and not doc.is_modified
    predict(doc, disk(1, 1, 3))
    doc.finish_object()
    assert doc.is_modified
    doc.mark_saved()
    assert not doc.has_unsaved_work
    doc.undo()
    assert doc.is_modified
    doc.redo()
    assert not doc.is_modified


def test_many_objects_instance_map_uint16():
    doc = AnnotationDocument((20, 20))
    for i in range(300):
        doc.paint([(i // 20, i % 20)], radius=0.4)
        assert doc.finish_object() is not None
    inst = doc.instance_map()
    assert inst.dtype == np.uint16 and inst.max() == 300


@pytest.mark.parametrize('shape', [None, ('a', 'b'), (0, 5), (5,), 7])
def test_bad_image_shape_is_an_input_error(shape):
    with pytest.raises(InputError, match='image_shape'):
        AnnotationDocument(shape)


def test_undo_history_is_bounded_by_memory_and_keeps_the_newest_steps():
    h, w = 40, 50
    one_map = h * w * 4
    doc = AnnotationDocument((h, w), history_bytes=8 * one_map)
    rng = np.random.default_rng(1)
    maps = []
    for k in range(30):
        doc.add_click(int(rng.integers(0, h)), int(rng.integers(0, w)), True)
        maps.append(rng.random((h, w), dtype=np.float32))
        predict(doc, maps[-1])
    assert doc.forgotten_steps > 0
    assert doc.history_memory() <= 8 * one_map
    undone = 0
    while doc.undo():
        undone += 1
        if doc.draft.prob is not None:       # every step still there is exact
            np.testing.assert_array_equal(doc.draft.prob, maps[len(doc.draft.clicks) - 1])
    assert 8 <= undone < 30 and undone + doc.forgotten_steps == 30
    assert len(doc.draft.clicks) == 30 - undone


def test_the_history_keeps_a_few_steps_whatever_they_cost_and_none_means_unbounded():
    from isegm.annotation.document import MIN_UNDO_STEPS
    doc = AnnotationDocument((30, 30), history_bytes=1)
    unbounded = AnnotationDocument((30, 30), history_bytes=None)
    for d in (doc, unbounded):
        for k in range(12):
            d.add_click(k, k, True)
            predict(d, np.full((30, 30), k / 12, np.float32))
    steps = 0
    while doc.undo():
        steps += 1
    assert steps == MIN_UNDO_STEPS and doc.forgotten_steps == 12 - MIN_UNDO_STEPS
    steps = 0
    while unbounded.undo():
        steps += 1
    assert steps == 12 and unbounded.forgotten_steps == 0


def test_history_memory_counts_shared_masks_once():
    doc = AnnotationDocument((H, W), history_bytes=None)
    doc.set_initial_mask(disk(20, 30, 10), as_prev_mask=False)
    doc.finish_object()                      # one object mask, shared by every later state
    for k in range(10):
        doc.set_draft_label(f'label{k}')     # steps that change no array
    assert doc.history_memory() == H * W * 4         # the initial mask of the first step only
    doc.paint([(10, 10)], 3)
    doc.undo()
    assert doc.history_memory() == H * W * 4 + H * W   # + the stroke, now only in the redo step
