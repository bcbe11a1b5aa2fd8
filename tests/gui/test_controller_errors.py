"""Bad input and failures seen by the GUI's controller: reported, never a crash, never lost work.

Real tiny model, real worker thread, real files; no display needed.
"""
import json
import logging
import resource

import numpy as np
import pytest
import torch
from PIL import Image

from isegm.annotation.engine import AnnotationEngine, PredictorSettings
from isegm.model.is_hrnet_model import HRNetModel
from tests.gui.helpers import folder_snapshot, read_only_folder
from tests.gui.test_controller import H, W, make_controller, make_folder, tiny_model, wait_idle


@pytest.fixture(scope='module')
def model():
    return tiny_model()


def broken_folder(tmp_path):
    """img0 good, img1 corrupt, img2 empty (0 bytes), img3 good, img4 text named .png."""
    make_folder(tmp_path, 1)
    rng = np.random.default_rng(1)
    (tmp_path / 'img1.png').write_bytes(b'\x89PNG\r\n\x1a\n' + bytes(rng.integers(0, 255, 200, dtype=np.uint8)))
    (tmp_path / 'img2.png').write_bytes(b'')
    Image.fromarray(rng.integers(0, 255, (H, W, 3), dtype=np.uint8)).save(tmp_path / 'img3.png')
    (tmp_path / 'img4.png').write_text('this is not an image')
    return tmp_path


def annotate_something(c, y=20, x=20):
    c.brush_radius = 4
    c.paint([(y, x), (y, x + 15)])
    c.finish_object()
    wait_idle(c)


def test_folder_mode_skips_unreadable_images(model, tmp_path):
    folder = broken_folder(tmp_path)
    c, errors = make_controller(model, folder)
    annotate_something(c)
    c.next_image()                              # img1 and img2 cannot be read: one dialog, then img3
    wait_idle(c)
    assert c.image_path.name == 'img3.png' and c.workspace.progress == '4 / 5'
    assert len(errors) == 1 and errors[0][0] == 'Open image'
    assert 'img1.png' in errors[0][1] and 'img2.png' in errors[0][1] and 'img3.png' in errors[0][1]
    assert (folder / 'annotations' / 'img0.json').exists()          # autosaved on the switch
    c.next_image()                              # only a broken image after img3: stay, say so
    wait_idle(c)
    assert c.image_path.name == 'img3.png' and c.workspace.progress == '4 / 5'
    assert len(errors) == 2 and 'img4.png' in errors[1][1] and 'stays open' in errors[1][1]
    c.previous_image()                          # known broken ones are skipped without another dialog
    wait_idle(c)
    assert c.image_path.name == 'img0.png' and len(c.doc.objects) == 1 and len(errors) == 2
    c.next_unannotated()                        # the unreadable images are not "unannotated" targets
    wait_idle(c)
    assert c.image_path.name == 'img3.png' and len(errors) == 2
    c.close()


def test_start_skips_a_broken_first_image(model, tmp_path):
    folder = broken_folder(tmp_path)
    (folder / 'img0.png').write_bytes(b'')
    errors = []
    from app.controller import InteractiveController
    from isegm.annotation.workspace import Workspace
    c = InteractiveController(AnnotationEngine(model), Workspace(folder), settings=PredictorSettings(use_zoom_in=False))
    c.on_error = lambda title, msg: errors.append((title, msg))
    assert c.start()
    assert c.image_path.name == 'img3.png' and len(errors) == 1
    c.close()
    for name in ('img0.png', 'img3.png'):
        (folder / name).write_bytes(b'')
    c = InteractiveController(AnnotationEngine(model), Workspace(folder))
    c.on_error = lambda title, msg: errors.append((title, msg))
    assert not c.start() and c.doc is None and 'Cannot read' in errors[-1][1]
    for command in (c.undo, c.redo, c.finish_object, c.reset_clicks, c.partially_finish, c.request_save,
                    c.next_image, c.previous_image):   # no image open: every command is a no-op
        command()
    c.add_click(3, 3, True)
    assert c.idle and c.doc is None
    c.close()


def test_save_into_read_only_folder_keeps_work_and_old_files(model, tmp_path):
    c, errors = make_controller(model, make_folder(tmp_path))
    out = tmp_path / 'annotations'
    annotate_something(c)
    assert not errors and not c.has_unsaved_work
    before = folder_snapshot(out)
    with read_only_folder(out):
        c.paint([(40, 40), (40, 60)])
        c.finish_object()                      # second object: the autosave of Space fails
        wait_idle(c)
        assert errors and errors[-1][0] == 'Save' and 'still in memory' in errors[-1][1]
        assert folder_snapshot(out) == before   # the previous files are intact
        assert c.has_unsaved_work and len(c.doc.objects) == 2
        done = []
        c.save_then(lambda: done.append(True))  # quitting with "Yes": the failed save keeps the window
        wait_idle(c)
        assert not done and len(errors) == 2 and folder_snapshot(out) == before
    assert not any(p.name.startswith('.isegm-tmp-') for p in out.iterdir())
    c.save_then(lambda: done.append(True))      # writable again: saved, then the callback
    wait_idle(c)
    assert done and not c.has_unsaved_work
    assert len(json.loads((out / 'img0.json').read_text())['objects']) == 2
    c.close()


def test_disk_full_during_save_keeps_the_document_unsaved(model, tmp_path):
    c, errors = make_controller(model, make_folder(tmp_path))
    out = tmp_path / 'annotations'
    annotate_something(c)
    before = folder_snapshot(out)
    c.paint([(40, 40), (40, 60)])
    c.doc.finish_object()
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    # files may grow to 4 kB: the project file fits, the colour preview of the noise image does not
    # (EFBIG, as on a full disk), so the save fails half-way
    resource.setrlimit(resource.RLIMIT_FSIZE, (4000, hard))
    try:
        c.request_save()                          # written on the worker thread: the limit applies there too
        wait_idle(c)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    assert errors and errors[-1][0] == 'Save'
    assert len(json.loads((out / 'img0.json').read_text())['objects']) == 2    # written before the failure
    assert c.has_unsaved_work and len(c.doc.objects) == 2       # but not marked saved: quitting asks
    after = folder_snapshot(out)
    assert set(after) == set(before) | {'img0_2.png'}           # no temp files left behind
    assert after['img0_preview.png'] == before['img0_preview.png']   # the old file, intact
    for name in after:
        if name.endswith('.png'):
            Image.open(out / name).load()                       # every PNG is a whole file
    c.request_save()
    wait_idle(c)
    assert not c.has_unsaved_work and len(errors) == 1
    c.close()


class OutOfMemoryHRNet(HRNetModel):
    def forward(self, *args, **kwargs):
        raise RuntimeError('CUDA out of memory. Tried to allocate 2.00 GiB')


def test_worker_exception_is_reported_and_work_kept(model, tmp_path, caplog):
    c, errors = make_controller(model, make_folder(tmp_path))
    annotate_something(c)
    torch.manual_seed(0)
    oom = OutOfMemoryHRNet(width=8, ocr_width=8, small=True, with_prev_mask=True, use_disks=True,
                           norm_radius=5).eval()
    c.engine = AnnotationEngine(oom)
    with caplog.at_level(logging.INFO):
        c.add_click(30, 30, True)
        c.request_save()                          # queued behind the failing prediction: still runs
        wait_idle(c)
    assert errors and errors[-1][0] == 'Prediction' and 'out of memory' in errors[-1][1]
    assert '--cpu' in errors[-1][1] and 'kept' in errors[-1][1]
    assert not any(r.exc_info for r in caplog.records)          # reported, no traceback in the log
    assert len(c.doc.objects) == 1 and c.doc.draft.clicks[0] == (30, 30, True)
    c.engine = AnnotationEngine(model)            # e.g. after restarting on the CPU: clicking works again
    c.add_click(31, 31, True)
    wait_idle(c)
    assert c.doc.draft.prob is not None and len(errors) == 1
    c.close()


def test_settings_reach_the_predictor_from_the_next_click(model, tmp_path):
    c, errors = make_controller(model, make_folder(tmp_path), PredictorSettings(with_flip=False))
    c.add_click(30, 40, True)
    wait_idle(c)
    p = c.engine._predictor
    assert type(p).__name__ == 'BasePredictor' and p.zoom_in is not None and p.net_clicks_limit is None
    c.set_threshold(0.3)
    c.apply_settings(PredictorSettings(use_zoom_in=False, brs_mode='f-BRS-B', net_clicks_limit=3,
                                       lbfgs_max_iters=5, with_flip=False, prob_thresh=c.settings.prob_thresh))
    assert c.engine._predictor is p               # nothing changes before the next click
    assert 'f-BRS-B' in c.message and 'ZoomIn off' in c.message
    c.add_click(10, 10, False)
    wait_idle(c)
    p = c.engine._predictor
    assert type(p).__name__ == 'HRNetFeatureBRSPredictor' and p.insertion_mode == 'A'
    assert p.zoom_in is None and p.net_clicks_limit == 3
    assert p.opt_functor.optimizer_params['maxfun'] == 5 and c.settings.prob_thresh == 0.3
    c.apply_settings(PredictorSettings(target_size=5))   # out of range: refused with a message
    assert errors[-1][0] == 'Settings' and c.settings.brs_mode == 'f-BRS-B'
    assert len(errors) == 1
    # no upper bound let one click try to allocate 160 GB (target size 99999) or use an infinite crop
    for bad in (dict(target_size=99999), dict(expansion_ratio=float('inf')), dict(expansion_ratio=float('nan')),
                dict(expansion_ratio=1e308), dict(lbfgs_max_iters=10 ** 6)):
        c.apply_settings(PredictorSettings(**bad))
        assert errors[-1][0] == 'Settings' and 'out of range' in errors[-1][1] and c.settings.brs_mode == 'f-BRS-B'
    assert len(errors) == 6
    c.close()


def test_load_mask_of_the_wrong_size(model, tmp_path):
    folder = tmp_path / 'images'
    folder.mkdir()
    make_folder(folder)
    Image.fromarray(np.full((H + 1, W, 3), 255, np.uint8)).save(tmp_path / 'big.png')
    (tmp_path / 'text.png').write_text('no mask')
    c, errors = make_controller(model, folder)
    c.load_mask(tmp_path / 'big.png')
    assert errors[-1][0] == 'Load mask' and f'{H + 1}' in errors[-1][1] and f'{H}' in errors[-1][1]
    c.load_mask(tmp_path / 'text.png')
    assert len(errors) == 2 and errors[-1][0] == 'Load mask' and c.doc.draft.is_empty
    c.close()


def test_gpu_without_cuda_falls_back_to_cpu(caplog):
    import demo
    gpu = 0 if not torch.cuda.is_available() else torch.cuda.device_count()   # a GPU that is not there
    with caplog.at_level(logging.WARNING, logger='demo'):
        assert demo.choose_device(demo.parse_args([f'--gpu={gpu}'])) == 'cpu'
    assert any(r.levelno == logging.WARNING and '--gpu' in r.getMessage() and 'CPU' in r.getMessage()
               for r in caplog.records)
    assert demo.choose_device(demo.parse_args(['--cpu'])) == 'cpu'
