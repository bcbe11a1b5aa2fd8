"""The GUI's controller without a display: real tiny model, real worker thread, real files."""
import json
import threading
import time

import numpy as np
import pytest
import torch
from PIL import Image

from app.controller import InteractiveController
from app.worker import InferenceWorker
from isegm.annotation.engine import AnnotationEngine, PredictorSettings
from isegm.annotation.workspace import Workspace
from tests.gui.helpers import wait_for

H, W = 64, 80


def tiny_model(with_prev_mask=True):
    from isegm.model.is_hrnet_model import HRNetModel
    torch.manual_seed(0)
    return HRNetModel(width=8, ocr_width=8, small=True, with_prev_mask=with_prev_mask, use_disks=True,
                      norm_radius=5).eval()


@pytest.fixture(scope='module')
def model():
    return tiny_model()


def make_folder(tmp_path, n=2):
    rng = np.random.default_rng(0)
    for i in range(n):
        Image.fromarray(rng.integers(0, 255, (H, W, 3), dtype=np.uint8)).save(tmp_path / f'img{i}.png')
    return tmp_path


def make_controller(model, folder, settings=None, saver=None):
    errors = []
    c = InteractiveController(AnnotationEngine(model), Workspace(folder), model_name='tiny',
                              settings=settings or PredictorSettings(use_zoom_in=False, with_flip=False),
                              saver=saver)
    c.on_error = lambda title, msg: errors.append((title, msg))
    assert c.open_image()
    return c, errors


def wait_idle(c, timeout=60):
    wait_for(c.poll, lambda: c.idle, timeout, 'the controller to become idle', interval=0.01)


def test_commands_during_inference_are_queued_in_order(model, tmp_path):
    c, errors = make_controller(model, make_folder(tmp_path))
    c.add_click(20, 30, True)
    assert c.busy
    c.add_click(50, 70, False)           # recorded at once, predicted after the running job
    c.finish_object()                    # waits for the prediction of both clicks
    c.add_click(5, 5, True)              # belongs to the next object: must come after the finish
    c.request_save()
    assert len(c.doc.draft.clicks) == 2 and not c.doc.objects
    wait_idle(c)
    assert not errors
    assert len(c.doc.objects) in (0, 1)  # random weights: the first object may be empty
    if c.doc.objects:
        assert [tuple(k) for k in c.doc.objects[0].clicks] == [(20, 30, True), (50, 70, False)]
    assert [tuple(k) for k in c.doc.draft.clicks] == [(5, 5, True)]
    assert c.doc.draft.prob is not None and c.doc.draft.prob_clicks == 1
    assert (tmp_path / 'annotations' / 'img0.json').exists()
    assert 'device: cpu' in c.status_text() and 'tiny' in c.status_text()
    c.close()


def test_undo_restores_predictor_state(model, tmp_path):
    c, errors = make_controller(model, make_folder(tmp_path), PredictorSettings(with_flip=False))   # with ZoomIn
    c.add_click(30, 40, True)
    wait_idle(c)
    p1 = c.doc.draft.prob
    c.add_click(10, 10, False)
    wait_idle(c)
    p2 = c.doc.draft.prob
    c.undo()
    assert c.idle                        # the one-click map is in the history: no new inference
    np.testing.assert_array_equal(c.doc.draft.prob, p1)
    c.add_click(10, 10, False)           # same click again from the restored state -> same result
    wait_idle(c)
    np.testing.assert_allclose(c.doc.draft.prob, p2, atol=1e-6)
    c.redo()                             # nothing to redo after a new click
    assert len(c.doc.draft.clicks) == 2 and not errors
    c.close()


def test_folder_mode_autosaves_and_resumes(model, tmp_path):
    c, errors = make_controller(model, make_folder(tmp_path, 3))
    c.brush_radius = 4
    c.paint([(20, 20), (20, 40)])
    c.next_image()                       # the open object is finished and saved on the switch
    wait_idle(c)
    assert c.workspace.progress == '2 / 3' and c.image_path.name == 'img1.png'
    saved = json.loads((tmp_path / 'annotations' / 'img0.json').read_text())
    assert len(saved['objects']) == 1 and saved['objects'][0]['area'] > 0
    c.next_unannotated()
    wait_idle(c)
    assert c.image_path.name == 'img2.png'
    c.previous_image()
    c.previous_image()
    wait_idle(c)
    assert c.image_path.name == 'img0.png' and len(c.doc.objects) == 1
    c.reopen_object(1)
    c.paint([(50, 60)], erase=False)
    c.finish_object()
    wait_idle(c)
    assert len(c.doc.objects) == 1 and c.doc.objects[0].area > saved['objects'][0]['area']
    assert not errors
    c.close()


def test_load_mask_and_errors(model, tmp_path):
    folder = tmp_path / 'images'
    folder.mkdir()
    make_folder(folder)
    mask = np.zeros((H, W), np.uint8)
    mask[10:30, 10:40] = 255
    Image.fromarray(mask).save(tmp_path / 'mask.png')
    c, errors = make_controller(model, folder)
    c.load_mask(tmp_path / 'mask.png')
    assert not errors and c.doc.current_mask().sum() == 600
    c.add_click(15, 15, True)
    req_prev = c.doc.prediction_request().prev_mask
    assert req_prev is not None and req_prev.sum() == 600
    wait_idle(c)
    # a broken image: error reported, current image kept
    (tmp_path / 'broken.png').write_bytes(b'not a png')
    assert not c.open_image(tmp_path / 'broken.png')
    assert errors and errors[-1][0] == 'Open image' and c.image_path.name == 'img0.png'
    c.close()
    # a model without the previous-mask input refuses masks with a clear message
    c2, errors2 = make_controller(tiny_model(with_prev_mask=False), folder)
    c2.load_mask(tmp_path / 'mask.png')
    assert errors2 and 'previous-mask' in errors2[0][1] and c2.doc.draft.is_empty
    c2.set_mode('extreme')               # no extreme model loaded
    assert c2.mode == 'click' and 'extreme' in errors2[-1][1]
    c2.close()


def test_extreme_points_use_the_pixel_containing_the_point(model, tmp_path):
    # Image pixel k spans [k, k + 1) (canvas_to_image): rounding refused the right half of the last
    # row/column as "outside" and took points just left of/above the image as pixel 0.
    import isegm
    engine = AnnotationEngine(model, extreme_model=isegm.load_model('isegm_compact_extreme'))
    c = InteractiveController(engine, Workspace(make_folder(tmp_path, 1)), model_name='tiny',
                              settings=PredictorSettings(use_zoom_in=False, with_flip=False))
    assert c.open_image()
    c.set_mode('extreme')
    c.add_click(H - 0.3, W - 0.2, True)
    c.add_click(10.8, -0.3, True)
    c.add_click(-0.4, 5, True)
    assert c.extreme_points == [(H - 1, W - 1)] and 'inside' in c.message


def test_pending_extreme_points_count_as_unsaved_work(model, tmp_path):
    # Three of four extreme points placed: quitting must ask, not drop them silently.
    import isegm
    engine = AnnotationEngine(model, extreme_model=isegm.load_model('isegm_compact_extreme'))
    c = InteractiveController(engine, Workspace(make_folder(tmp_path, 1)), model_name='tiny',
                              settings=PredictorSettings(use_zoom_in=False, with_flip=False))
    assert c.open_image() and not c.has_unsaved_work
    c.set_mode('extreme')
    for y, x in [(10, 20), (30, 5), (50, 40)]:
        c.add_click(y, x, True)
    assert len(c.extreme_points) == 3 and c.has_unsaved_work
    for _ in range(3):
        c.undo()
    assert c.extreme_points == [] and not c.has_unsaved_work


def test_engine_refuses_models_given_in_the_wrong_role(model):
    # An extreme-point checkpoint passed as the click model (demo.py --checkpoint=...) would fail at the
    # first click with a shape error; it is refused at start with a message naming the right option.
    import isegm
    from isegm.errors import InputError
    extreme = isegm.load_model('isegm_compact_extreme')
    with pytest.raises(InputError, match='--extreme-checkpoint'):
        AnnotationEngine(extreme)
    with pytest.raises(InputError, match='--checkpoint'):
        AnnotationEngine(model, extreme_model=model)
    assert AnnotationEngine(model, extreme_model=extreme).has_extreme_model


def test_saving_runs_in_the_background_and_later_commands_wait_in_order(model, tmp_path):
    """Space saves on the save thread: the window stays responsive (a click is recorded at once), the
    file holds the objects as they were at Space, and undos given meanwhile apply in order, after the
    click's prediction, without reaching the file being written."""
    c, errors = make_controller(model, make_folder(tmp_path, 1))
    project = tmp_path / 'annotations' / 'img0.json'
    c.brush_radius = 4
    c.paint([(20, 20), (20, 40)])
    c.finish_object()
    assert c.busy and 'saving...' in c.status_text()     # submitted; its result is taken only by poll()
    c.add_click(45, 60, True)                             # recorded now, predicted during the save
    c.undo()                                              # undoes that click, after its prediction (queued)
    c.undo()                                              # undoes Space
    assert len(c.doc.draft.clicks) == 1 and len(c.doc.objects) == 1
    wait_idle(c)
    assert not errors
    saved = json.loads(project.read_text())
    assert len(saved['objects']) == 1 and saved['objects'][0]['area'] > 0
    assert len(c.doc.objects) == 0 and c.doc.is_modified   # the undo came after the save: not on disk
    assert 'saving...' not in c.status_text()
    c.redo()
    wait_idle(c)
    assert len(c.doc.objects) == 1 and not c.doc.is_modified   # back to the saved version
    c.close()


def test_switching_images_says_when_the_open_object_had_no_pixels_of_its_own(model, tmp_path):
    c, errors = make_controller(model, make_folder(tmp_path, 2))
    c.brush_radius = 10
    c.paint([(30, 30), (30, 50)])
    c.finish_object()
    wait_idle(c)
    c.brush_radius = 3
    c.paint([(30, 40)])                 # a second object entirely under the first (overwrite is off)
    c.next_image()
    wait_idle(c)
    assert c.image_path.name == 'img1.png' and not errors
    assert 'not kept' in c.message and 'overwrite' in c.message
    saved = json.loads((tmp_path / 'annotations' / 'img0.json').read_text())
    assert len(saved['objects']) == 1
    c.close()


@pytest.mark.parametrize('toggle_first', [False, True])
def test_clicks_during_an_extreme_point_prediction_correct_its_result(model, tmp_path, toggle_first):
    """Clicks made while the extreme-point mask is computed wait for it and refine it; before, a click in
    extreme mode became a stray fifth point, and one after toggling to click mode went onto the old draft
    (replaced by the result) and was never predicted."""
    import isegm
    engine = AnnotationEngine(model, extreme_model=isegm.load_model('isegm_compact_extreme'))
    c = InteractiveController(engine, Workspace(make_folder(tmp_path, 1)), model_name='tiny',
                              settings=PredictorSettings(use_zoom_in=False, with_flip=False))
    assert c.open_image()
    c.set_mode('extreme')
    for y, x in [(10, 40), (35, 10), (60, 40), (35, 70)]:
        c.add_click(y, x, True)
    assert c.busy and c.extreme_points == [(10, 40), (35, 10), (60, 40), (35, 70)]
    if toggle_first:
        c.toggle_extreme_mode()
        assert c.mode == 'click'
    c.add_click(30, 40, True)
    c.add_click(50, 60, False)
    assert not c.doc.draft.clicks and len(c.extreme_points) == (0 if toggle_first else 4)   # nothing applied yet
    wait_idle(c)
    draft = c.doc.draft
    assert c.mode == 'click' and c.extreme_points == []
    assert draft.extreme_points == ((10, 40), (35, 10), (60, 40), (35, 70))
    assert [tuple(k) for k in draft.clicks] == [(30, 40, True), (50, 60, False)]
    assert draft.prob_clicks == 2 and draft.prob is not None         # predicted from the extreme mask
    c.close()


def test_commands_aimed_at_one_image_never_land_on_the_next(model, tmp_path):
    """Clicks, strokes and object commands that wait in the queue behind an image switch were applied to
    the image opened next: a delete meant for object 1 of one image deleted object 1 of the other. They
    are now dropped with a note, and the switch itself still saves."""
    c, errors = make_controller(model, make_folder(tmp_path, 2))
    c.brush_radius = 4
    for _ in range(2):                      # object 1 on both images
        c.paint([(20, 20), (20, 40)])
        c.finish_object()
        c.next_image()
        wait_idle(c)
    c.previous_image()
    wait_idle(c)
    assert c.image_path.name == 'img0.png'
    c.add_click(40, 60, True)               # a prediction runs: what follows waits in the queue
    assert c.busy
    c.next_image()
    c.delete_object(1)                      # aimed at img0's object 1
    c.rename_object(1, 'renamed')
    c.add_click(10, 10, True)
    c.paint([(50, 10)])
    c.reopen_object(1)
    wait_idle(c)
    assert not errors
    assert c.image_path.name == 'img1.png'
    assert [o.id for o in c.doc.objects] == [1] and c.doc.objects[0].label != 'renamed'
    assert c.doc.draft.is_empty and not c.doc.draft.clicks
    assert 'dropped' in c.message and 'previous image' in c.message
    saved0 = json.loads((tmp_path / 'annotations' / 'img0.json').read_text())
    assert [o['id'] for o in saved0['objects']][0] == 1     # img0's object 1 kept; the open click became object 2
    c.close()


def test_a_click_during_the_save_of_an_image_switch_is_dropped_with_a_note(model, tmp_path):
    c, errors = make_controller(model, make_folder(tmp_path, 2))
    c.brush_radius = 4
    c.paint([(20, 20), (20, 40)])
    c.next_image()                          # saves img0 on the worker, then opens img1
    assert c.busy
    c.add_click(30, 30, True)               # on the image being left
    wait_idle(c)
    assert not errors and c.image_path.name == 'img1.png'
    assert not c.doc.draft.clicks and 'dropped' in c.message
    assert len(json.loads((tmp_path / 'annotations' / 'img0.json').read_text())['objects']) == 1
    c.close()


class GatedWorker(InferenceWorker):
    """The real worker thread, holding each job until the test opens the gate (to see what the window does
    while a save is being written, however fast the machine writes it)."""

    def __init__(self):
        super().__init__(name='gated-save')
        self.gate = threading.Event()

    def submit(self, fn, on_done, on_error):
        def held():
            assert self.gate.wait(60), 'the test never opened the gate'
            return fn()
        super().submit(held, on_done, on_error)


def test_the_click_after_space_is_predicted_while_the_save_is_written(model, tmp_path):
    saver = GatedWorker()
    c, errors = make_controller(model, make_folder(tmp_path, 1), saver=saver)
    project = tmp_path / 'annotations' / 'img0.json'
    c.brush_radius = 4
    c.paint([(20, 20), (20, 40)])
    c.finish_object()
    c.add_click(45, 60, True)
    wait_for(c.poll, lambda: c.doc.draft.prob is not None, 60, 'the prediction of the click after Space')
    assert c.saving and c.busy and not c.idle and 'saving...' in c.status_text()
    assert not project.exists()                          # the save is still held
    saver.gate.set()
    wait_idle(c)
    assert not errors and not c.saving
    assert len(json.loads(project.read_text())['objects']) == 1
    assert len(c.doc.draft.clicks) == 1 and c.doc.draft.prob is not None
    c.close()


def test_saves_asked_for_during_a_save_follow_it_in_order_and_a_switch_waits_for_them(model, tmp_path):
    saver = GatedWorker()
    c, errors = make_controller(model, make_folder(tmp_path, 2), saver=saver)
    project = tmp_path / 'annotations' / 'img0.json'
    c.brush_radius = 4
    c.paint([(20, 20)])
    c.finish_object()                         # save 1 (held): one object
    c.paint([(45, 60)])
    c.finish_object()                         # save 2 waits for save 1; it will hold both objects
    assert len(c.doc.objects) == 2
    c.next_image()                            # leaves only once everything is written
    c.add_click(30, 30, True)                 # aimed at img0 during its save: dropped after the switch
    for _ in range(20):
        c.poll()
        time.sleep(0.01)
    assert c.image_path.name == 'img0.png' and not project.exists()
    saver.gate.set()
    wait_idle(c)
    assert not errors and c.image_path.name == 'img1.png' and c.doc.draft.is_empty
    assert len(json.loads(project.read_text())['objects']) == 2
    assert 'dropped' in c.message
    c.close()


def test_a_switch_after_saving_unchanged_work_waits_for_that_save(model, tmp_path):
    saver = GatedWorker()
    saver.gate.set()
    c, errors = make_controller(model, make_folder(tmp_path, 2), saver=saver)
    project = tmp_path / 'annotations' / 'img0.json'
    c.brush_radius = 4
    c.paint([(20, 20)])
    c.finish_object()
    wait_idle(c)
    first = project.stat().st_mtime_ns
    saver.gate.clear()
    c.request_save()                          # Ctrl+S with nothing changed: written again (held)
    assert c.saving and not c.doc.is_modified
    c.next_image()
    for _ in range(20):
        c.poll()
        time.sleep(0.01)
    assert c.image_path.name == 'img0.png'    # not while its files are being rewritten
    saver.gate.set()
    wait_idle(c)
    assert not errors and c.image_path.name == 'img1.png'
    assert project.stat().st_mtime_ns != first
    c.close()


def test_undo_says_when_older_steps_were_forgotten_for_memory(model, tmp_path):
    c, errors = make_controller(model, make_folder(tmp_path, 1))
    c.doc.history_bytes = 1                   # every step beyond the guaranteed few is forgotten
    for k in range(8):
        c.add_click(10 + 5 * k, 10 + 5 * k, True)
        wait_idle(c)
    for _ in range(8):
        c.undo()
        wait_idle(c)
    from isegm.annotation.document import MIN_UNDO_STEPS
    assert not errors and c.doc.forgotten_steps == 8 - MIN_UNDO_STEPS
    assert len(c.doc.draft.clicks) == 8 - MIN_UNDO_STEPS
    assert 'forgotten' in c.message
    c.close()
