"""The real window under Xvfb, as a demanding user drives it: quitting, folder mode, settings, errors.

A tiny HRNet click model keeps these fast; dialogs are real Tk dialogs, answered with real key presses
from a background xdotool process.
"""
import json
import os
import subprocess
import sys
import tkinter as tk

import numpy as np
import pytest
from PIL import Image

from isegm.annotation.engine import AnnotationEngine
from tests.gui.helpers import (ROOT, answer_dialog, click_at, click_widget, focus, folder_snapshot, move_pointer, pump,
                               read_only_folder, record_errors, save_tiny_checkpoint, screenshot, settle,
                               wait_answered)

pytestmark = [pytest.mark.gui]


@pytest.fixture(scope='module')
def tiny_ckpt(tmp_path_factory):
    return save_tiny_checkpoint(tmp_path_factory.mktemp('ckpt') / 'tiny_h8.pth')


def noise_image(path, h=120, w=160, seed=0):
    Image.fromarray(np.random.default_rng(seed).integers(0, 255, (h, w, 3), dtype=np.uint8)).save(path)
    return path


@pytest.fixture()
def tiny_app(x_display, tiny_ckpt, tmp_path):
    """Build the window as demo.py does, with the tiny checkpoint; error dialogs are real (and recorded)."""
    import demo
    from app.app import AnnotationApp
    made = []

    def make(source, extra_args=()):
        args = demo.parse_args([str(source), f'--checkpoint={tiny_ckpt}', '--cpu', f'--output={tmp_path / "out"}',
                                *extra_args])
        controller = demo.build_controller(args)
        root = tk.Tk()
        root.geometry('1280x800+0+0')
        app = AnnotationApp(root, controller)
        errors = record_errors(app)
        made.append((root, controller))
        return root, app, controller, errors

    def show(root, app):
        pump(root, lambda: root.winfo_viewable() and app.canvas.canvas.winfo_width() > 100, 30, 'the window')
        app.fit()
        settle(root)

    yield make, show, tmp_path / 'out'
    for root, controller in made:
        controller.close()
        try:
            root.destroy()
        except tk.TclError:
            pass


def start_window(make, show, source, xdotool):
    """The window on ``source``, started, shown and focused: ``(root, app, controller, errors)``."""
    root, app, controller, errors = make(source)
    controller.start()
    show(root, app)
    focus(root, xdotool)
    return root, app, controller, errors


def unsaved_object(root, app, controller, xdotool):
    """A click at (60, 80), its prediction, and a non-empty mask whatever the random model says."""
    click_at(app, xdotool, 60, 80)
    pump(root, lambda: controller.idle and controller.doc.draft.prob is not None, 30, 'the prediction')
    controller.doc.paint([(60, 60), (60, 100)], 5)


def pump_until_destroyed(root, timeout=30):
    """Run the loop until the window is destroyed (True) or ``timeout`` passes (False)."""
    import time
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            root.update()
            root.winfo_exists()
        except tk.TclError:
            return True
        time.sleep(0.02)
    return False


def pump_until_closed(root, proc, timeout=40):
    """Run the loop while a dialog is answered; True when the window was destroyed meanwhile."""
    import time
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            root.update()
        except tk.TclError:
            proc.wait(timeout)
            return True
        if proc.poll() is not None:
            try:
                settle(root, 0.3)
                return not root.winfo_exists()
            except tk.TclError:
                return True
        time.sleep(0.02)
    raise AssertionError('the dialog was not answered')


def test_quit_with_unsaved_changes_asks(tiny_app, xdotool, x_display, tmp_path):
    make, show, out = tiny_app
    image = noise_image(tmp_path / 'noise.png')
    for answer in ('Escape', 'alt+n', 'alt+y'):          # Cancel stays, No discards, Yes saves
        root, app, controller, errors = start_window(make, show, image, xdotool)
        unsaved_object(root, app, controller, xdotool)
        assert controller.has_unsaved_work
        proc = answer_dialog(x_display, 'Quit', answer)
        xdotool('key', 'ctrl+q')
        closed = pump_until_closed(root, proc)
        assert proc.returncode == 0, 'no "Quit" dialog appeared'
        if answer == 'Escape':
            assert not closed and controller.has_unsaved_work and not (out / 'noise.json').exists()
            screenshot(root, x_display, 'gui_quit_cancelled.png')
            app._close()                                 # cleanup without the question
        elif answer == 'alt+n':
            assert closed and not (out / 'noise.json').exists()
        else:
            assert closed and not errors
            project = json.loads((out / 'noise.json').read_text())
            assert len(project['objects']) == 1 and project['objects'][0]['clicks'] == [[60, 80, True]]
            assert (out / 'noise_1.png').exists()


def test_quitting_again_while_a_save_and_quit_waits_opens_no_second_dialog(tiny_app, xdotool, x_display, tmp_path):
    """Yes in the Quit dialog while a prediction runs queues the save; a second Ctrl+Q (or close button) must
    not open another dialog, which the queued save would destroy under the user (a TclError traceback)."""
    make, show, out = tiny_app
    image = noise_image(tmp_path / 'noise.png')
    root, app, controller, errors = start_window(make, show, image, xdotool)
    unsaved_object(root, app, controller, xdotool)
    controller._must_wait = lambda: True     # as while a slow prediction runs: the save is queued behind it
    proc = answer_dialog(x_display, 'Quit', 'alt+y')
    xdotool('key', 'ctrl+q')
    assert not pump_until_closed(root, proc) and proc.returncode == 0
    assert app._quit_pending and not (out / 'noise.json').exists()
    second = answer_dialog(x_display, 'Quit', 'Escape', timeout=4)
    xdotool('key', 'ctrl+q')
    pump(root, lambda: second.poll() is not None, 30, 'the search for a second dialog')
    assert second.returncode == 3, 'a second Quit dialog opened while the save-and-quit was waiting'
    del controller._must_wait                # the prediction ends: the queued save runs, then the window closes
    controller._drain()
    assert pump_until_destroyed(root), 'the window stayed open after the save'
    assert not errors and len(json.loads((out / 'noise.json').read_text())['objects']) == 1


def test_quitting_while_the_save_of_space_runs_waits_for_it_and_asks_nothing(tiny_app, xdotool, x_display,
                                                                             tmp_path):
    """Space saves in the background; quitting right after must neither cut that save off nor ask about work
    the user already saved (a "No" would have meant "I saved already" and killed the write)."""
    make, show, out = tiny_app
    image = noise_image(tmp_path / 'noise.png')
    root, app, controller, errors = start_window(make, show, image, xdotool)
    unsaved_object(root, app, controller, xdotool)
    controller.finish_object()               # the save is on the worker; its result not yet taken
    assert controller.saving
    dialog = answer_dialog(x_display, 'Quit', 'Escape', timeout=4)
    app.quit_app()
    assert pump_until_destroyed(root), 'the window did not close after the save'
    pump_dialog = dialog.wait(30)
    assert pump_dialog == 3, 'a Quit dialog asked about work that was being saved'
    assert not errors and len(json.loads((out / 'noise.json').read_text())['objects']) == 1
    assert (out / 'noise_preview.png').exists() and (out / 'coco.json').exists()


def test_folder_mode_in_the_window(tiny_app, xdotool, x_display, tmp_path):
    make, show, out = tiny_app
    folder = tmp_path / 'images'
    folder.mkdir()
    for i in (0, 2, 3):
        noise_image(folder / f'img{i}.png', seed=i)
    (folder / 'img1.png').write_bytes(b'\x89PNG\r\n\x1a\n' + b'\x00' * 64)      # corrupt
    root, app, controller, errors = start_window(make, show, folder, xdotool)
    assert app.progress_var.get() == '1 / 4'
    unsaved_object(root, app, controller, xdotool)

    proc = answer_dialog(x_display, 'Open image', 'Return')
    xdotool('key', 'n')                                  # autosave img0, img1 is corrupt: dialog, then img2
    wait_answered(root, proc, 'the unreadable-image dialog')
    pump(root, lambda: controller.idle and controller.image_path.name == 'img2.png', 20, 'img2')
    assert errors and errors[0][0] == 'Open image' and 'img1.png' in errors[0][1]
    assert app.progress_var.get() == '3 / 4' and root.title().endswith('img2.png')
    assert len(json.loads((out / 'img0.json').read_text())['objects']) == 1

    xdotool('key', 'Prior')                              # PageUp: img1 is skipped silently now
    pump(root, lambda: controller.idle and controller.image_path.name == 'img0.png', 20, 'img0')
    assert len(errors) == 1 and app.progress_var.get() == '1 / 4'
    assert len(controller.doc.objects) == 1 and len(app.objects.tree.get_children()) == 1   # restored
    xdotool('key', 'Next')                               # PageDown
    pump(root, lambda: controller.idle and controller.image_path.name == 'img2.png', 20, 'img2 again')
    xdotool('key', 'u')                                  # next unannotated: img3
    pump(root, lambda: controller.idle and controller.image_path.name == 'img3.png', 20, 'img3')
    assert app.progress_var.get() == '4 / 4' and 'image 4 / 4' in app.status.var.get()
    xdotool('key', 'p')
    pump(root, lambda: controller.idle and controller.image_path.name == 'img2.png', 20, 'img2 by p')

    # clicks outside the image (the margin after "fit", and far outside after zooming out): ignored
    canvas = app.canvas
    move_pointer(xdotool, canvas.canvas.winfo_rootx() + 400, canvas.canvas.winfo_rooty() + 300)
    for _ in range(3):
        xdotool('click', 5)                              # wheel down: zoom out
    settle(root)
    cw, ch = canvas.canvas.winfo_width(), canvas.canvas.winfo_height()
    for y, x in ((-20, 80), (60, -30), (140, 80), (60, 190)):     # above, left, below, right of the image
        cx, cy = canvas.image_to_canvas(y, x)
        assert 0 < cx < cw and 0 < cy < ch                        # on the canvas, outside the image
        click_at(app, xdotool, y, x, button=1)
        click_at(app, xdotool, y, x, button=3)
    settle(root, 0.5)
    assert controller.doc.draft.is_empty and controller.idle and len(errors) == 1
    assert 'outside' in controller.message
    screenshot(root, x_display, 'gui_folder_mode.png')


def test_settings_panel_and_failures_in_the_window(tiny_app, xdotool, x_display, tmp_path):
    import torch
    from isegm.model.is_hrnet_model import HRNetModel

    class OutOfMemoryHRNet(HRNetModel):
        def forward(self, *args, **kwargs):
            raise RuntimeError('CUDA out of memory. Tried to allocate 2.00 GiB')

        def get_coord_features(self, *args, **kwargs):     # what the f-BRS predictors call first
            raise RuntimeError('CUDA out of memory. Tried to allocate 2.00 GiB')

    make, show, out = tiny_app
    image = noise_image(tmp_path / 'noise.png')
    root, app, controller, errors = start_window(make, show, image, xdotool)
    panel = app.settings
    assert panel.net_clicks_spin.instate(['disabled'])           # NoBRS: the network sees every click
    app.display.threshold.set(0.4)
    controller.set_threshold(0.4)
    click_widget(panel.zoom_in_check, xdotool, dx=8)             # ZoomIn off: applies at once
    pump(root, lambda: not controller.settings.use_zoom_in, 5, 'ZoomIn off')
    click_widget(panel.brs_combo, xdotool, dx=20)                # BRS mode: f-BRS-B from the list
    settle(root, 0.3)
    xdotool('key', 'Down', 'Down', 'Down', 'Down', 'Return')
    pump(root, lambda: controller.settings.brs_mode == 'f-BRS-B', 5, 'f-BRS-B')
    assert panel.net_clicks_spin.instate(['!disabled'])
    click_widget(panel.net_clicks_spin, xdotool, dx=10)          # network clicks: 3, Return
    xdotool('key', 'End', 'BackSpace', 'BackSpace', 'BackSpace')
    xdotool('type', '3')
    xdotool('key', 'Return')
    pump(root, lambda: controller.settings.net_clicks_limit == 3, 5, 'network clicks = 3')
    assert controller.settings.prob_thresh == 0.4                # applying kept the slider's threshold
    focus(root, xdotool)
    click_at(app, xdotool, 60, 80)
    pump(root, lambda: controller.idle and controller.doc.draft.prob is not None, 60, 'the f-BRS prediction')
    predictor = controller.engine._predictor
    assert type(predictor).__name__ == 'HRNetFeatureBRSPredictor'
    assert predictor.zoom_in is None and predictor.net_clicks_limit == 3 and not errors

    # a failing worker (CUDA out of memory): a dialog, the window and the clicks survive
    good_engine = controller.engine
    torch.manual_seed(0)
    controller.engine = AnnotationEngine(OutOfMemoryHRNet(width=8, ocr_width=8, small=True, with_prev_mask=True,
                                                          use_disks=True, norm_radius=5).eval())
    proc = answer_dialog(x_display, 'Prediction', 'Return')
    click_at(app, xdotool, 30, 30, button=3)
    wait_answered(root, proc, 'the out-of-memory dialog')
    pump(root, lambda: controller.idle, 10, 'idle after the failure')
    assert errors[-1][0] == 'Prediction' and 'out of memory' in errors[-1][1]
    assert root.winfo_exists() and len(controller.doc.draft.clicks) == 2
    controller.engine = good_engine

    # a save into a read-only folder: a dialog, the work stays, the old files stay
    controller.doc.paint([(60, 60), (60, 100)], 5)
    focus(root, xdotool)
    xdotool('key', 'space')
    pump(root, lambda: controller.idle and (out / 'noise.json').exists(), 30, 'the first save')
    before = folder_snapshot(out)
    controller.rename_object(1, 'cat')
    with read_only_folder(out):
        proc = answer_dialog(x_display, 'Save', 'Return')
        xdotool('key', 'ctrl+s')
        wait_answered(root, proc, 'the save-failed dialog')
        assert errors[-1][0] == 'Save' and folder_snapshot(out) == before
        assert controller.doc.objects[0].label == 'cat' and controller.has_unsaved_work
        assert root.title().endswith('*')
    xdotool('key', 'ctrl+s')
    pump(root, lambda: controller.idle and not controller.has_unsaved_work, 20, 'the save after the fix')
    assert json.loads((out / 'noise.json').read_text())['objects'][0]['label'] == 'cat'

    # "Load mask" with a mask of another size: a clear message
    Image.fromarray(np.zeros((10, 10), np.uint8)).save(tmp_path / 'small_mask.png')
    proc = answer_dialog(x_display, 'Load mask', 'Return')
    controller.load_mask(tmp_path / 'small_mask.png')
    wait_answered(root, proc, 'the wrong-size dialog')
    assert errors[-1][0] == 'Load mask' and '10' in errors[-1][1] and '120' in errors[-1][1]
    assert len(errors) == 3


def test_bad_checkpoint_at_start_exits_cleanly(x_display, tmp_path):
    """A 0-byte --checkpoint: a dialog, a message on stderr, exit code 1, no traceback."""
    empty = tmp_path / 'empty.pth'
    empty.write_bytes(b'')
    proc = subprocess.Popen([sys.executable, str(ROOT / 'demo.py'), str(ROOT / 'samples' / 'chelsea.png'),
                             f'--checkpoint={empty}', '--cpu', f'--output={tmp_path / "out"}'],
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, 'DISPLAY': x_display, 'OMP_NUM_THREADS': '1'})
    answer = answer_dialog(x_display, 'isegm', 'Return', timeout=60)
    out, err = proc.communicate(timeout=90)
    answer.wait(10)
    assert answer.returncode == 0, f'no error dialog appeared; stderr: {err}'
    assert proc.returncode == 1
    assert 'empty (0 bytes)' in err and 'Traceback' not in err + out
    assert not (tmp_path / 'out').exists()


def test_no_model_in_weights_folder(x_display, tmp_path, monkeypatch, caplog):
    import demo
    (tmp_path / 'weights').mkdir()
    (tmp_path / 'config.yml').write_text('INTERACTIVE_MODELS_PATH: "./weights"\n')
    monkeypatch.setenv('ISEGM_CONFIG', str(tmp_path / 'config.yml'))
    answer = answer_dialog(x_display, 'isegm', 'Return')
    rc = demo.main([str(ROOT / 'samples' / 'chelsea.png'), '--cpu', f'--output={tmp_path / "out"}'])
    answer.wait(40)
    assert rc == 1 and answer.returncode == 0
    messages = [r.getMessage() for r in caplog.records if r.levelname == 'ERROR']
    assert any('no click model is available' in m and '--checkpoint' in m for m in messages)


def test_bad_checkpoint_without_display_reports_the_checkpoint(tmp_path):
    """No display and a broken checkpoint: the checkpoint problem is what the user reads, exit code 1."""
    broken = tmp_path / 'broken.pth'
    broken.write_bytes(b'not a checkpoint at all')
    env = {k: v for k, v in os.environ.items() if k != 'DISPLAY'}
    proc = subprocess.run([sys.executable, str(ROOT / 'demo.py'), str(ROOT / 'samples' / 'chelsea.png'),
                           f'--checkpoint={broken}', '--cpu', f'--output={tmp_path / "out"}'],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120,
                          env={**env, 'OMP_NUM_THREADS': '1'})
    assert proc.returncode == 1, proc.stderr
    assert 'broken.pth' in proc.stderr and 'cannot open a window' not in proc.stderr
    assert 'Traceback' not in proc.stderr + proc.stdout


def test_file_open_keeps_the_output_folder(tiny_app, x_display, tmp_path):
    """--output holds for images and folders opened later from the File menu, and the work lands there."""
    make, show, out = tiny_app
    first, other_dir = tmp_path / 'first.png', tmp_path / 'elsewhere'
    other_dir.mkdir()
    noise_image(first, seed=1)
    noise_image(other_dir / 'second.png', seed=2)
    root, app, controller, errors = make(first)
    controller.start()
    show(root, app)
    controller.open_source(other_dir / 'second.png')
    pump(root, lambda: controller.idle and controller.image_path.name == 'second.png', 20, 'the other image')
    assert controller.workspace.output_dir == out
    controller.doc.paint([(60, 60), (60, 100)], 5)
    controller.open_source(other_dir)                       # autosaves second.png into --output
    pump(root, lambda: controller.idle and (out / 'second.json').exists(), 20, 'the autosave')
    assert controller.workspace.output_dir == out and not (other_dir / 'annotations').exists()
    assert not errors


def test_brs_list_offers_only_the_modes_of_the_model(tiny_app, x_display, tmp_path):
    """The bundled compact model has no f-BRS insertion points: its BRS list leaves f-BRS-A/B/C out (choosing
    one used to end in an error dialog); the HRNet model lists all six modes."""
    import demo
    from app.app import AnnotationApp
    from isegm.annotation.engine import BRS_MODES
    make, show, out = tiny_app
    image = noise_image(tmp_path / 'noise.png')
    root, app, controller, errors = make(image)
    assert tuple(root.tk.splitlist(app.settings.brs_combo.cget('values'))) == BRS_MODES
    controller.close()
    root.destroy()
    args = demo.parse_args([str(image), '--cpu', f'--output={tmp_path / "out2"}'])   # the bundled models
    controller = demo.build_controller(args)
    root = tk.Tk()
    try:
        app = AnnotationApp(root, controller)
        values = tuple(root.tk.splitlist(app.settings.brs_combo.cget('values')))
        assert values == ('NoBRS', 'RGB-BRS', 'DistMap-BRS')
    finally:
        controller.close()
        root.destroy()


def test_grabcut_refine_check_box(tiny_app, xdotool, x_display, tmp_path):
    """With the bundled extreme model (demo.py's default) the toolbar shows "GrabCut refine", ticked (the
    model asks for it); unticking it makes the next extreme-point mask the network's mask alone. Without
    an extreme model there is no such box."""
    from app.app import AnnotationApp
    from app.controller import InteractiveController
    from isegm.annotation.workspace import Workspace
    from isegm.inference.predictors.extreme import ExtremePointsPredictor
    make, show, out = tiny_app
    image = noise_image(tmp_path / 'noise.png', h=160, w=200)
    root, app, controller, errors = make(image)
    assert controller.engine.has_extreme_model
    controller.start()
    show(root, app)
    assert app.grabcut_check.winfo_ismapped() and app.grabcut_var.get()
    assert controller.engine.extreme_grabcut_refine
    focus(root, xdotool)
    click_widget(app.grabcut_check, xdotool, dx=8)
    pump(root, lambda: not controller.engine.extreme_grabcut_refine, 5, 'GrabCut refinement off')
    points = [(80, 30), (70, 170), (20, 100), (140, 110)]
    controller.set_mode('extreme')
    for y, x in points:
        controller.add_click(y, x, True)
    pump(root, lambda: controller.idle and controller.doc.draft.init_mask is not None, 60, 'the mask')
    plain = ExtremePointsPredictor(controller.engine.extreme_model, grabcut_refine=False)
    expected = plain.predict(controller.image, points) > plain.threshold
    np.testing.assert_array_equal(controller.doc.draft.init_mask > 0, expected)
    assert not errors

    no_extreme = InteractiveController(AnnotationEngine(controller.engine.click_model), Workspace(image),
                                       model_name='tiny')
    top = tk.Toplevel(root)
    try:
        app2 = AnnotationApp(top, no_extreme)
        settle(root)
        assert not app2.grabcut_check.winfo_ismapped()
    finally:
        no_extreme.close()
        top.destroy()
