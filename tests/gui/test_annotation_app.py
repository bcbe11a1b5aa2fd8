"""The real Tk window under Xvfb, driven with real mouse and key events (xdotool)."""
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_utils

from tests.gui.helpers import ROOT, click_at, focus, pump, screenshot, settle

pytestmark = [pytest.mark.gui, pytest.mark.slow]

SAMPLE = ROOT / 'samples' / 'chelsea.png'
CKPT = 'ritm/hrnet18s_cocolvis_itermask_3p/checkpoint.pth'


@pytest.fixture()
def app_factory(x_display, reference_dir, tmp_path):
    """Build the app in-process as demo.py does (same argument parsing and model loading)."""
    import tkinter as tk
    import demo
    from app.app import AnnotationApp
    made = []

    def make(extra_args=()):
        image = tmp_path / 'chelsea.png'
        shutil.copy(SAMPLE, image)
        args = demo.parse_args([str(image), f'--checkpoint={reference_dir / CKPT}', '--cpu',
                                f'--output={tmp_path / "out"}', *extra_args])
        controller = demo.build_controller(args)
        controller.on_error = lambda title, msg: pytest.fail(f'error dialog: {title}: {msg}')
        root = tk.Tk()
        root.geometry('1280x800+0+0')
        app = AnnotationApp(root, controller)
        controller.on_error = lambda title, msg: (_ for _ in ()).throw(AssertionError(f'{title}: {msg}'))
        controller.start()
        pump(root, lambda: root.winfo_viewable() and app.canvas.canvas.winfo_width() > 100, 30, 'the window')
        app.fit()
        settle(root)
        made.append((root, controller))
        return root, app, controller, tmp_path / 'out'

    yield make
    for root, controller in made:
        controller.close()
        try:
            root.destroy()
        except Exception:
            pass


def test_click_mode_finish_and_save(app_factory, xdotool, x_display):
    root, app, controller, out = app_factory()
    focus(root, xdotool)
    click_at(app, xdotool, 150, 220, button=1)          # positive click on the cat
    pump(root, lambda: len(controller.doc.draft.clicks) == 1, 10, 'the positive click')
    click_at(app, xdotool, 12, 12, button=3)            # short right press: negative click outside
    pump(root, lambda: len(controller.doc.draft.clicks) == 2, 10, 'the negative click')
    assert controller.doc.draft.clicks[0] == (150, 220, True)
    assert controller.doc.draft.clicks[1] == (12, 12, False)
    xdotool('key', 'space')                              # queued behind the running inference
    xdotool('key', 'ctrl+s')
    pump(root, lambda: controller.idle and (out / 'chelsea.json').exists(), 180, 'inference and saving')
    settle(root)
    screenshot(root, x_display, 'gui_click_mode.png')

    project = json.loads((out / 'chelsea.json').read_text())
    assert len(project['objects']) == 1
    obj = project['objects'][0]
    assert obj['clicks'] == [[150, 220, True], [12, 12, False]]
    assert not controller.doc.has_unsaved_work
    inst = np.asarray(Image.open(out / 'chelsea_instances.png'))
    single = np.asarray(Image.open(out / 'chelsea_1.png'))
    assert inst.shape == (300, 451) and set(np.unique(single)) <= {0, 255}
    np.testing.assert_array_equal(inst == 1, single == 255)
    assert (inst == 1).sum() == obj['area'] > 0
    np.testing.assert_array_equal(inst == 1, controller.doc.objects[0].mask)
    assert np.asarray(Image.open(out / 'chelsea_preview.png')).shape == (300, 451, 3)
    coco = json.loads((out / 'coco.json').read_text())
    seg = dict(coco['annotations'][0]['segmentation'])
    seg['counts'] = seg['counts'].encode()
    np.testing.assert_array_equal(mask_utils.decode(seg), (inst == 1).astype(np.uint8))

    # wheel zoom at the cursor keeps the image point under it; Ctrl+Z then brings the object back into editing
    y0, x0 = 100, 100
    sx, sy = app.canvas.image_to_screen(y0, x0)
    scale = app.canvas.scale
    xdotool('mousemove', '--sync', sx, sy)
    xdotool('click', 4)
    settle(root)
    assert app.canvas.scale > scale
    ny, nx = app.canvas.canvas_to_image(sx - app.canvas.canvas.winfo_rootx(), sy - app.canvas.canvas.winfo_rooty())
    assert abs(ny - (y0 + 0.5)) < 1.5 and abs(nx - (x0 + 0.5)) < 1.5
    xdotool('key', 'ctrl+z')
    pump(root, lambda: len(controller.doc.objects) == 0, 10, 'undo of the finish')
    assert len(controller.doc.draft.clicks) == 2 and controller.doc.has_unsaved_work
    xdotool('key', 'f')                                  # fit to window
    settle(root)
    assert abs(app.canvas.scale - scale) < 1e-6
    # brush: 'b', then a left drag paints onto the current object
    xdotool('key', 'b')
    pump(root, lambda: controller.mode == 'brush', 5, 'brush mode')
    sx, sy = app.canvas.image_to_screen(280, 20)
    ex, ey = app.canvas.image_to_screen(280, 120)
    xdotool('mousemove', '--sync', sx, sy)
    xdotool('mousedown', 1)
    for i in range(1, 6):
        xdotool('mousemove', '--sync', sx + (ex - sx) * i // 5, sy)
        settle(root, 0.05)
    xdotool('mouseup', 1)
    pump(root, lambda: controller.doc.draft.brush_add is not None, 10, 'the brush stroke')
    assert controller.doc.current_mask()[280, 20:120].all()
    xdotool('key', 'b')
    pump(root, lambda: controller.mode == 'click', 5, 'click mode')
    screenshot(root, x_display, 'gui_editing.png')


def test_extreme_points_then_refine(app_factory, xdotool, x_display, tmp_path):
    import torch
    from isegm.model.is_dextr_model import DextrModel
    torch.manual_seed(0)
    dextr = DextrModel()
    with torch.no_grad():                               # random body, a head that says "object" inside the box
        dextr.layer5.final.weight.zero_()
        dextr.layer5.final.bias.fill_(6.0)
    ckpt = tmp_path / 'dextr_test.pth'
    torch.save(dextr.state_dict(), ckpt)
    del dextr
    root, app, controller, out = app_factory([f'--extreme-checkpoint={ckpt}'])
    focus(root, xdotool)
    xdotool('key', 'e')
    pump(root, lambda: controller.mode == 'extreme', 5, 'extreme mode')
    points = [(150, 100), (140, 330), (40, 220), (260, 230)]     # left, right, top, bottom (y, x)
    for y, x in points:
        click_at(app, xdotool, y, x)
        settle(root, 0.1)
    pump(root, lambda: controller.idle and controller.doc.draft.init_mask is not None, 180, 'the extreme-point mask')
    assert controller.mode == 'click'
    draft = controller.doc.draft
    assert draft.extreme_points == tuple(points)
    box = draft.init_mask > 0
    ys, xs = np.nonzero(box)
    assert (ys.min(), ys.max(), xs.min(), xs.max()) == (40, 260, 100, 330)
    # refine with a click: the extreme-point mask is the ITER-M previous mask
    click_at(app, xdotool, 150, 220)
    pump(root, lambda: len(controller.doc.draft.clicks) == 1, 10, 'the refining click')
    xdotool('key', 'space')
    xdotool('key', 'ctrl+s')
    pump(root, lambda: controller.idle and (out / 'chelsea.json').exists(), 180, 'refinement and saving')
    settle(root)
    screenshot(root, x_display, 'gui_extreme_mode.png')
    project = json.loads((out / 'chelsea.json').read_text())
    obj = project['objects'][0]
    assert obj['extreme_points'] == [list(p) for p in points]
    assert obj['clicks'] == [[150, 220, True]]
    single = np.asarray(Image.open(out / 'chelsea_1.png'))
    assert single.max() == 255
