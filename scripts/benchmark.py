#!/usr/bin/env python
"""Seconds per click, first-click latency and peak memory per model and predictor mode.

    python scripts/benchmark.py --checkpoint=PATH_OR_NAME --modes NoBRS,f-BRS-B --threads 2

Protocol (defaults): GrabCut images 124080, 181079 and teddy; 5 clicks each, chosen by the evaluation
clicker from the ground truth; ZoomIn target 400; horizontal-flip averaging; threshold 0.49;
LimitLongestSide 800 (inactive on GrabCut, keeps the network input small with ``--image-size 6000x4000``).
``--fast on|off`` switches the model's fast inference path (``auto``: as ``load_model`` leaves it, on). Each
(model, mode) runs in its own process so that the peak RSS is that run's own; ``--repeat N`` runs N such
processes and pools their clicks (the median is then robust to a noisy neighbour on a shared machine).
``--annotation`` times the annotation tool itself instead (canvas redraws and saves on a large image);
``--annotation-memory N`` annotates N objects (2 clicks + Space each) on a large image through the GUI's
controller (real model, real saves) and prints the resident memory as objects accumulate.
Prints a table: per-click median and p90, first click (``set_input_image`` + the first prediction; the
simulated user's click, a distance transform over the ground truth, is not timed) as the
median over all images, ``first_cold_s`` = the first image of a fresh process (oneDNN primitives and buffers
created for the first time), peak RSS of the largest run.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DEFAULT_IMAGES = '124080,181079,teddy'


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--checkpoint', action='append', default=None,
                   help='path or zoo name; repeat for several models (default: the bundled model)')
    p.add_argument('--modes', default='NoBRS', help='comma-separated predictor modes')
    p.add_argument('--images', default=DEFAULT_IMAGES, help='GrabCut image names')
    p.add_argument('--clicks', type=int, default=5, help='clicks per image')
    p.add_argument('--threads', type=int, default=2)
    p.add_argument('--device', default='cpu')
    p.add_argument('--image-size', default=None,
                   help='WxH: resize the images to this size first (e.g. 6000x4000 for the large-image check)')
    p.add_argument('--limit-longest-size', type=int, default=800,
                   help='LimitLongestSide max_size (0 = off); no effect on the GrabCut images (<= 640 px)')
    p.add_argument('--zoom-in-target-size', type=int, default=400)
    p.add_argument('--no-zoom-in', action='store_true')
    p.add_argument('--no-flip', action='store_true')
    p.add_argument('--fast', choices=['auto', 'on', 'off'], default='auto',
                   help='fast inference path (if the engine has one): on/off/auto')
    p.add_argument('--repeat', type=int, default=1, help='fresh processes per (model, mode); clicks are pooled')
    p.add_argument('--config', default=None)
    p.add_argument('--annotation', action='store_true',
                   help='instead of clicks: time the annotation tool\'s redraws and saves on the first image '
                        'resized to --image-size (default 6000x4000), with 5 objects and an open one')
    p.add_argument('--annotation-memory', type=int, default=0, metavar='N',
                   help='instead of clicks: annotate N objects on the first image resized to --image-size '
                        '(default 6000x4000) through the GUI controller and print VmRSS / peak RSS')
    p.add_argument('--single', action='store_true', help=argparse.SUPPRESS)
    return p.parse_args(argv)


def run_single(args):
    import cv2
    import numpy as np
    import torch

    torch.set_num_threads(args.threads)
    from isegm.data.datasets.eval_sets import GrabCutDataset
    from isegm.inference.clicker import Clicker
    from isegm.inference.predictors import get_predictor
    from isegm.model.checkpoint import load_model, resolve_device
    from isegm.utils.config import load_config

    cfg = load_config(args.config)
    device = resolve_device(args.device)
    model, info = load_model(args.checkpoint[0] if args.checkpoint else None, device=device, return_info=True)
    if args.fast != 'auto' and hasattr(model, 'set_fast_inference'):
        model.set_fast_inference(args.fast == 'on')
    dataset = GrabCutDataset(cfg['GRABCUT_PATH'])
    wanted = args.images.split(',')
    samples = [dataset.get_sample(i) for i in range(len(dataset)) if dataset.items[i][2] in wanted]
    mode = args.modes
    zoom = None if args.no_zoom_in else {'target_size': args.zoom_in_target_size}
    params = {'max_size': args.limit_longest_size} if args.limit_longest_size else None
    predictor = get_predictor(model, mode, device, prob_thresh=0.49, with_flip=not args.no_flip,
                              zoom_in_params=zoom, predictor_params=params)
    per_click, first = [], []
    for s in samples:
        image, gt = s.image, s.gt_mask
        if args.image_size:
            w, h = (int(v) for v in args.image_size.lower().split('x'))
            image = cv2.resize(image, (w, h), interpolation=cv2.INTER_LINEAR)
            gt = cv2.resize(gt.astype(np.int16), (w, h), interpolation=cv2.INTER_NEAREST).astype(np.int32)
        clicker = Clicker(gt_mask=gt)
        pred = np.zeros(gt.shape, bool)
        t0 = time.perf_counter()
        predictor.set_input_image(image)
        set_input_s = time.perf_counter() - t0
        for k in range(args.clicks):
            clicker.make_next_click(pred)   # the simulated user (a distance transform): not timed
            t1 = time.perf_counter()
            prob = predictor.get_prediction(clicker)
            t2 = time.perf_counter()
            pred = prob > 0.49
            if k == 0:
                first.append(set_input_s + t2 - t1)
            per_click.append(t2 - t1)
        if device.type == 'cuda':
            torch.cuda.synchronize()
    peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    gpu_mb = torch.cuda.max_memory_allocated() / 2 ** 20 if device.type == 'cuda' else None
    print(json.dumps({'model': info['name'], 'mode': mode, 'device': str(device), 'threads': args.threads,
                      'fast': getattr(model, 'fast_inference', None),
                      'per_click': per_click, 'first': first, 'peak_rss_mb': peak_rss_mb,
                      'peak_gpu_mb': gpu_mb, 'image_size': args.image_size or 'native'}))


def main(argv=None):
    args = parse_args(argv)
    if args.single:
        return run_single(args)
    if args.annotation:
        return run_annotation(args)
    if args.annotation_memory:
        return run_annotation_memory(args)
    rows = []
    for ckpt in (args.checkpoint or [None]):
        for mode in args.modes.split(','):
            cmd = [sys.executable, __file__, '--single', '--modes', mode] + _forward(args)
            if ckpt:
                cmd += ['--checkpoint', ckpt]
            runs = []
            for _ in range(max(1, args.repeat)):
                res = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ))
                line = [ln for ln in res.stdout.splitlines() if ln.startswith('{')]
                if res.returncode != 0 or not line:
                    print(f'{ckpt or "default"} {mode}: failed\n{res.stderr[-2000:]}', file=sys.stderr)
                    break
                runs.append(json.loads(line[-1]))
            else:
                rows.append(pool_runs(runs))
    if not rows:
        return 1
    cols = ['model', 'mode', 'device', 'threads', 'image_size', 'runs', 'clicks', 'median_s', 'p90_s',
            'first_click_s', 'first_cold_s', 'peak_rss_mb', 'peak_gpu_mb', 'fast']
    def fmt(v):
        if isinstance(v, bool):
            return 'on' if v else 'off'
        return f'{v:.3f}' if isinstance(v, float) else ('-' if v is None else str(v))
    widths = [max(len(c), *(len(fmt(r[c])) for r in rows)) for c in cols]
    print('| ' + ' | '.join(c.ljust(w) for c, w in zip(cols, widths)) + ' |')
    print('|' + '|'.join('-' * (w + 2) for w in widths) + '|')
    for r in rows:
        print('| ' + ' | '.join(fmt(r[c]).rjust(w) for c, w in zip(cols, widths)) + ' |')
    return 0


def run_annotation(args, repeats: int = 5) -> int:
    """Median seconds of the annotation tool's own work (no network) on one large image: canvas redraws
    (what the window shows after every click or zoom) and saves (Space), plus the peak RSS."""
    import tempfile

    import cv2
    import numpy as np
    from PIL import Image

    from isegm.annotation.document import AnnotationDocument
    from isegm.annotation.export import export_image
    from isegm.annotation.render import ViewRenderer, render_overlay
    from isegm.data.datasets.eval_sets import GrabCutDataset
    from isegm.utils.config import load_config

    cfg = load_config(args.config)
    w, h = (int(v) for v in (args.image_size or '6000x4000').lower().split('x'))
    dataset = GrabCutDataset(cfg['GRABCUT_PATH'])
    name = args.images.split(',')[0]
    sample = next(dataset.get_sample(i) for i in range(len(dataset)) if dataset.items[i][2] == name)
    image = cv2.resize(sample.image, (w, h), interpolation=cv2.INTER_CUBIC)   # a photo's texture, large
    gt = cv2.resize(sample.gt_mask.astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST) > 0
    doc = AnnotationDocument((h, w), image_name=f'{name}.png')
    yy, xx = np.ogrid[:h, :w]
    shapes = [gt] + [((yy - h * cy) / (h * 0.08)) ** 2 + ((xx - w * cx) / (w * 0.06)) ** 2 <= 1
                     for cy, cx in ((0.15, 0.15), (0.2, 0.85), (0.85, 0.15), (0.85, 0.85))]
    for mask in shapes:
        doc.set_initial_mask(mask.astype(np.float32), as_prev_mask=False)
        doc.finish_object()
    doc.set_initial_mask((((yy - h * 0.5) / (h * 0.1)) ** 2 + ((xx - w * 0.3) / (w * 0.1)) ** 2 <= 1)
                         .astype(np.float32))          # the open object

    def median_time(fn, n=repeats):
        times = []
        for _ in range(n):
            t = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t)
        return float(np.median(times))

    view_w, view_h = 1000, int(round(1000 * h / w))
    viewer = ViewRenderer(image)

    def redraw(box, size, fresh):
        if fresh:
            viewer._cache_key = None        # a pan or zoom: the image part is resampled too
        viewer.render(box, size, doc.visible_objects(), draft_mask=lambda sample: doc.current_mask(view=sample),
                      clicks=doc.draft.all_clicks())
    rows = []
    fit = ((0, 0, w, h), (view_w, view_h))
    zoom = ((w // 2 - 250, h // 2 - 150, w // 2 + 250, h // 2 + 150), (1000, 600))
    redraw(*fit, True)                      # builds the image pyramid once (at image load)
    rows.append(('redraw after a click, whole image in view', median_time(lambda: redraw(*fit, False))))
    rows.append(('redraw after a zoom or pan, whole image in view', median_time(lambda: redraw(*fit, True))))
    rows.append(('redraw after a click, 2x zoom', median_time(lambda: redraw(*zoom, False))))
    rows.append(('full-resolution overlay (the preview; the canvas before)',
                 median_time(lambda: Image.fromarray(render_overlay(image, doc.visible_objects(),
                                                                      draft_mask=doc.current_mask())))))
    with tempfile.TemporaryDirectory() as out:
        snapshot = doc.snapshot()
        rows.append(('save, first time (5 objects)', median_time(lambda: export_image(snapshot, image, out, name), 1)))
        rows.append(('save again, nothing changed', median_time(lambda: export_image(snapshot, image, out, name))))
        doc.finish_object()
        snapshot = doc.snapshot()
        rows.append(('save after one more object (Space)', median_time(lambda: export_image(snapshot, image, out, name), 1)))
    rows.append(('click right after Space: until its mask (the save runs meanwhile)',
                 _click_after_space(args, image, repeats)))
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f'annotation tool on {name} resized to {w}x{h}, 5 objects + an open one (median of {repeats}; '
          f'peak RSS {rss:.0f} MB)')
    width = max(len(r[0]) for r in rows)
    print(f'| {"operation".ljust(width)} | seconds |')
    print(f'|{"-" * (width + 2)}|---------|')
    for label, t in rows:
        print(f'| {label.ljust(width)} | {t:7.3f} |')
    return 0


def _click_after_space(args, image, repeats: int) -> float:
    """Median seconds from a click made right after Space until its mask is shown, in the GUI's controller
    (no window): real model (``--checkpoint`` or the bundled one), real saves of the growing document."""
    import tempfile

    import cv2
    import numpy as np
    import torch

    import isegm
    from app.controller import InteractiveController
    from isegm.annotation.engine import AnnotationEngine, PredictorSettings
    from isegm.annotation.workspace import Workspace

    torch.set_num_threads(args.threads)
    model = isegm.load_model((args.checkpoint or [None])[0], device=args.device)
    h, w = image.shape[:2]
    with tempfile.TemporaryDirectory() as folder:
        cv2.imwrite(str(Path(folder) / 'large.jpg'), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        c = InteractiveController(AnnotationEngine(model), Workspace(folder), settings=PredictorSettings())
        if not c.open_image():
            raise RuntimeError(f'could not open the benchmark image: {c.message}')

        def wait(condition):
            while not condition():
                c.poll()
                time.sleep(0.002)
        points = [(h * fy, w * fx) for fy, fx in ((0.25, 0.25), (0.7, 0.75), (0.3, 0.8), (0.75, 0.2), (0.5, 0.5))]
        times = []
        for i in range(repeats):
            c.add_click(*points[i % len(points)], True)
            wait(lambda: c.idle)
            start = time.perf_counter()
            c.finish_object()
            c.add_click(*points[(i + 1) % len(points)], True)
            wait(lambda: c.doc.draft.prob is not None and not c.worker.busy)
            times.append(time.perf_counter() - start)
            wait(lambda: c.idle)
            c.reset_clicks()
            wait(lambda: c.idle)
        c.close()
    return float(np.median(times))


def _proc_status_mb(field: str) -> float:
    """A ``/proc/self/status`` memory field (VmRSS, VmHWM) in MB; NaN where /proc is not there."""
    try:
        for line in Path('/proc/self/status').read_text().splitlines():
            if line.startswith(field + ':'):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float('nan')


def run_annotation_memory(args) -> int:
    """Resident memory of an annotation session on a large image, in the GUI's controller (no window): the
    first image resized to ``--image-size`` (default 6000 x 4000), ``--annotation-memory`` objects each made
    of two positive clicks and Space (which saves), with the real model (``--checkpoint`` or the bundled one)."""
    import tempfile

    import cv2
    import torch

    import isegm
    from app.controller import InteractiveController
    from isegm.annotation.engine import AnnotationEngine, PredictorSettings
    from isegm.annotation.workspace import Workspace
    from isegm.data.datasets.eval_sets import GrabCutDataset
    from isegm.utils.config import load_config

    torch.set_num_threads(args.threads)
    cfg = load_config(args.config)
    w, h = (int(v) for v in (args.image_size or '6000x4000').lower().split('x'))
    dataset = GrabCutDataset(cfg['GRABCUT_PATH'])
    name = args.images.split(',')[0]
    sample = next(dataset.get_sample(i) for i in range(len(dataset)) if dataset.items[i][2] == name)
    image = cv2.resize(sample.image, (w, h), interpolation=cv2.INTER_CUBIC)
    del sample
    model = isegm.load_model((args.checkpoint or [None])[0], device=args.device)
    rows = [('model loaded', _proc_status_mb('VmRSS'), _proc_status_mb('VmHWM'))]
    n = args.annotation_memory
    report_at = {1, n} | set(range(5, n + 1, 5))
    with tempfile.TemporaryDirectory() as folder:
        cv2.imwrite(str(Path(folder) / 'large.jpg'), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        del image
        c = InteractiveController(AnnotationEngine(model), Workspace(folder), settings=PredictorSettings())
        if not c.open_image():
            raise RuntimeError(f'could not open the benchmark image: {c.message}')

        def wait():
            while not c.idle:
                c.poll()
                time.sleep(0.002)
        rows.append(('image open', _proc_status_mb('VmRSS'), _proc_status_mb('VmHWM')))
        for k in range(1, n + 1):             # objects on a 6 x 5 grid of cells, walked in order
            fy, fx = (0.1 + 0.16 * ((k - 1) // 6 % 5)), (0.08 + 0.16 * ((k - 1) % 6))
            for dy, dx in ((0.0, 0.0), (0.02, 0.02)):
                c.add_click(h * (fy + dy), w * (fx + dx), True)
                wait()
            c.finish_object()
            wait()
            if k in report_at:
                rows.append((f'{k} objects finished ({len(c.doc.objects)} kept)', _proc_status_mb('VmRSS'),
                             _proc_status_mb('VmHWM')))
        c.close()
    print(f'annotation session on {name} resized to {w}x{h}: 2 clicks + Space per object, {args.threads} threads')
    width = max(len(r[0]) for r in rows)
    print(f'| {"after".ljust(width)} | VmRSS MB | peak MB |')
    print(f'|{"-" * (width + 2)}|----------|---------|')
    for label, rss, hwm in rows:
        print(f'| {label.ljust(width)} | {rss:8.0f} | {hwm:7.0f} |')
    return 0


def pool_runs(runs):
    """One table row from the JSON results of several ``--single`` processes of one (model, mode)."""
    import numpy as np
    per_click = [t for r in runs for t in r['per_click']]
    first = [t for r in runs for t in r['first']]
    gpu = [r['peak_gpu_mb'] for r in runs if r['peak_gpu_mb'] is not None]
    row = {k: runs[0][k] for k in ('model', 'mode', 'device', 'threads', 'fast', 'image_size')}
    row.update(runs=len(runs), clicks=len(per_click), median_s=float(np.median(per_click)),
               p90_s=float(np.percentile(per_click, 90)), first_click_s=float(np.median(first)),
               first_cold_s=float(np.mean([r['first'][0] for r in runs])),
               peak_rss_mb=max(r['peak_rss_mb'] for r in runs), peak_gpu_mb=max(gpu) if gpu else None)
    return row


def _forward(args):
    out = ['--images', args.images, '--clicks', str(args.clicks), '--threads', str(args.threads),
           '--device', args.device, '--zoom-in-target-size', str(args.zoom_in_target_size), '--fast', args.fast]
    out += ['--limit-longest-size', str(args.limit_longest_size or 0)]
    for flag, val in [('--image-size', args.image_size), ('--config', args.config)]:
        if val:
            out += [flag, str(val)]
    out += ['--no-zoom-in'] if args.no_zoom_in else []
    out += ['--no-flip'] if args.no_flip else []
    return out


if __name__ == '__main__':
    sys.exit(main())
