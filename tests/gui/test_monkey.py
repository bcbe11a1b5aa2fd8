"""Random use of the real window (Xvfb): mouse, keys, object commands and masks in any order and at any
speed, on a folder of odd images. Afterwards nothing unexpected was raised, no prediction or save failed,
and every saved file agrees with its project file.

Error dialogs are recorded instead of shown (expected refusals such as "another object is being edited"
would otherwise wait for an answer); the dialogs themselves are driven for real in test_app_robustness. ``MONKEY_SEEDS=3,4,5`` runs other seeds
(the "enough was annotated" floor holds for the default ones; another seed may annotate too little).
"""
import json
import os
import random
import tkinter as tk

import numpy as np
import pytest
from PIL import Image

from tests.gui.helpers import pump, settle

pytestmark = [pytest.mark.gui]

FAILURES = ('Unexpected error', 'Prediction', 'Save', 'Extreme points')


def photo(h, w, seed):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:h, :w]
    img = np.stack([xx * 255 // max(w - 1, 1), yy * 255 // max(h - 1, 1), (xx + yy) % 256], -1).astype(np.uint8)
    cy, cx, r = rng.uniform(0.3, 0.7) * h, rng.uniform(0.3, 0.7) * w, min(h, w) / 4
    img[(yy - cy) ** 2 + (xx - cx) ** 2 < r * r] = rng.integers(0, 255, 3)
    return img


def make_folder(folder):
    folder.mkdir()
    Image.fromarray(photo(120, 160, 0)).save(folder / 'a.jpg')
    Image.fromarray(photo(90, 70, 1)[..., 0]).save(folder / 'grey.png')
    Image.fromarray(photo(30, 300, 2)).save(folder / 'strip.png')
    (folder / 'broken.jpg').write_bytes(b'\xff\xd8\xff\xe0 not a jpeg')


class Monkey:
    def __init__(self, root, app, controller, folder, seed):
        self.root, self.app, self.c = root, app, controller
        self.rng = random.Random(seed)
        self.canvas = app.canvas.canvas
        self.masks = [folder.parent / 'mask_a.png', folder.parent / 'mask_small.png']
        Image.fromarray((photo(120, 160, 0)[..., 2] > 128).astype(np.uint8) * 255).save(self.masks[0])
        Image.fromarray(np.zeros((5, 5), np.uint8)).save(self.masks[1])
        from app.app import KEYS
        self.keys = sorted({name for _, name in KEYS} - {'quit_app'})
        # relative frequencies: mostly finishing, undoing and moving on, as an annotator does
        self.weights = {'finish_object': 8, 'undo': 4, 'redo': 2, 'toggle_brush': 2, 'toggle_extreme_mode': 2}
        self.log = []

    def step(self):
        r, rng, c, cv = self.rng.random(), self.rng, self.c, self.canvas
        x, y = rng.randrange(-10, cv.winfo_width() + 10), rng.randrange(-10, cv.winfo_height() + 10)
        if r < 0.4:
            button = rng.choice([1, 1, 3])
            cv.event_generate(f'<ButtonPress-{button}>', x=x, y=y)
            if rng.random() < 0.2:   # a drag: a pan (right) or a brush stroke (left)
                cv.event_generate(f'<B{button}-Motion>', x=x + rng.randrange(-40, 40), y=y + rng.randrange(-40, 40))
            cv.event_generate(f'<ButtonRelease-{button}>', x=x, y=y)
            action = f'button {button} at {x},{y}'
        elif r < 0.72:
            name = rng.choices(self.keys, weights=[self.weights.get(k, 1) for k in self.keys])[0]
            if name == 'delete_selected':
                if c.selected_id is None:
                    return
                c.delete_object(c.selected_id)   # what a Yes in the confirmation does
            else:
                getattr(self.app if name in ('fit', 'toggle_eraser') else c, name)()
            action = name
        elif r < 0.78:
            cv.event_generate(f'<Button-{rng.choice([4, 5])}>', x=x, y=y)
            action = 'wheel'
        elif r < 0.83:
            c.set_threshold(rng.random())
            action = 'threshold'
        elif r < 0.87:
            path = rng.choice(self.masks)
            c.load_mask(path)
            action = f'load mask {path.name}'
        elif r < 0.95 and c.doc is not None and c.doc.objects:
            oid = rng.choice([o.id for o in c.doc.objects])
            kind = rng.choice(['select_object', 'reopen_object', 'delete_object', 'rename'])
            if kind == 'rename':
                c.rename_object(oid, rng.choice(['cat', 'dog', 'a label with spaces']))
            else:
                getattr(c, kind)(oid)
            action = f'{kind} {oid}'
        else:
            c.set_overwrite(rng.random() < 0.5)
            action = 'overwrite'
        self.log.append(action)
        settle(self.root, rng.choice([0.0, 0.02, 0.1, 0.4]))


@pytest.mark.parametrize('seed', [int(s) for s in os.environ.get('MONKEY_SEEDS', '0,1').split(',')])
def test_random_use_of_the_window_keeps_the_saved_files_consistent(x_display, tmp_path, seed):
    import demo
    from app.app import AnnotationApp
    from isegm.annotation import load_project
    folder, out = tmp_path / 'images', tmp_path / 'out'
    make_folder(folder)
    controller = demo.build_controller(demo.parse_args([str(folder), '--cpu', f'--output={out}']))   # bundled models
    root = tk.Tk()
    root.geometry('1000x700+0+0')
    app = AnnotationApp(root, controller)
    errors = []
    app.show_error = lambda title, message: errors.append((title, message))
    controller.on_error = app.show_error
    try:
        controller.start()
        pump(root, lambda: root.winfo_viewable() and app.canvas.canvas.winfo_width() > 100, 30, 'the window')
        monkey = Monkey(root, app, controller, folder, seed)
        for _ in range(150):
            monkey.step()
            failed = [e for e in errors if e[0] in FAILURES]
            assert not failed, f'{failed} after {monkey.log[-8:]}'
        pump(root, lambda: controller.idle and not controller.saving, 120, 'the queued commands')
        controller.request_save()
        pump(root, lambda: controller.idle and not controller.saving, 120, 'the last save')
        assert not [e for e in errors if e[0] in FAILURES], errors
        assert not controller.doc.is_modified
        assert any('cannot be read' in message for _, message in errors)     # broken.jpg was reported
    finally:
        controller.close()
        root.destroy()

    projects = sorted(p for p in out.glob('*.json') if p.name != 'coco.json')
    assert projects, f'nothing saved after {monkey.log}'
    assert sum(len(load_project(p).objects) for p in projects) >= 2, f'too little was annotated: {monkey.log}'
    coco = json.loads((out / 'coco.json').read_text())
    for project in projects:
        stem = project.stem
        doc = load_project(project)
        instances = np.asarray(Image.open(out / f'{stem}_instances.png'))
        np.testing.assert_array_equal(instances, doc.instance_map())
        for k, obj in enumerate(doc.objects, start=1):
            png = np.asarray(Image.open(out / f'{stem}_{k}.png'))
            np.testing.assert_array_equal(png > 0, obj.mask)
            assert obj.mask.any()
        assert not (out / f'{stem}_{len(doc.objects) + 1}.png').exists()
        image = next(i for i in coco['images'] if i['file_name'].rsplit('.', 1)[0] == stem
                     or i['file_name'] == stem)
        assert sum(a['image_id'] == image['id'] for a in coco['annotations']) == len(doc.objects)
