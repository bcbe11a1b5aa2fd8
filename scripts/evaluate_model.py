#!/usr/bin/env python
"""NoC evaluation of a click model (or mean IoU of an extreme-point model) on the standard benchmarks.

    python scripts/evaluate_model.py NoBRS --checkpoint=coco_lvis_h18_itermask --datasets=GrabCut,Berkeley

Prints a table (NoC@85, NoC@90, NoF@85, NoF@90, mIoU@1, mIoU@5, seconds per click), saves the per-sample
IoU arrays (``.npz``) and an mIoU-vs-clicks plot (``.png``) under ``--save-dir``.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path
from typing import List, Optional

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from tqdm import tqdm  # noqa: E402

from isegm.errors import InputError, IsegmError  # noqa: E402
from isegm.inference.predictors import BRS_MODES  # noqa: E402
from isegm.utils.config import load_config  # noqa: E402


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('mode', choices=list(BRS_MODES) + ['extreme'],
                   help='predictor mode; "extreme" (or an extreme-point checkpoint) evaluates 4 extreme points')
    p.add_argument('--checkpoint', default=None, help='path or zoo name (default: the bundled model)')
    p.add_argument('--datasets', default='GrabCut,Berkeley',
                   help='comma-separated: GrabCut,Berkeley,DAVIS,COCO_MVal,SBD,PascalVOC')
    dev = p.add_mutually_exclusive_group()
    dev.add_argument('--gpu', type=int, default=None, help='GPU id')
    dev.add_argument('--cpu', action='store_true', help='run on the CPU (default without --gpu)')
    p.add_argument('--n-clicks', type=int, default=20, help='maximum clicks per object')
    p.add_argument('--min-n-clicks', type=int, default=1)
    p.add_argument('--target-iou', type=float, default=0.90, help='stop an object when its IoU reaches this')
    p.add_argument('--iou-analysis', action='store_true', help='always make all --n-clicks clicks')
    p.add_argument('--thresh', type=float, default=0.49, help='probability threshold')
    p.add_argument('--no-flip', action='store_true', help='disable horizontal-flip averaging')
    p.add_argument('--no-zoom-in', action='store_true', help='disable ZoomIn')
    p.add_argument('--no-grabcut-refine', action='store_true',
                   help="extreme mode: the network's mask alone, without the GrabCut refinement a model may ask for")
    p.add_argument('--zoom-in-target-size', type=int, default=400)
    p.add_argument('--limit-longest-size', type=int, default=None)
    p.add_argument('--max-samples', type=int, default=None, help='evaluate only the first N samples per set')
    p.add_argument('--threads', type=int, default=None, help='torch.set_num_threads')
    p.add_argument('--save-dir', default=None, help='default: EXPS_PATH/evaluation_logs')
    p.add_argument('--config', default=None, help='config.yml to use')
    p.add_argument('--no-plot', action='store_true')
    return p


def validate_args(args: argparse.Namespace) -> Optional[str]:
    """Check the flags before anything is loaded or created; returns what is wrong, or None."""
    if args.n_clicks < 1:
        return f'--n-clicks must be >= 1, got {args.n_clicks}'
    if not 1 <= args.min_n_clicks <= args.n_clicks:
        return f'--min-n-clicks must be between 1 and --n-clicks ({args.n_clicks}), got {args.min_n_clicks}'
    if args.max_samples is not None and args.max_samples < 1:
        return f'--max-samples must be >= 1, got {args.max_samples}'
    if not 0 < args.thresh < 1:   # also refuses NaN
        return f'--thresh is a probability threshold and must be in (0, 1), got {args.thresh}'
    if not 0 < args.target_iou <= 1:
        return (f'--target-iou must be in (0, 1], got {args.target_iou}; '
                'use --iou-analysis to always make all --n-clicks clicks')
    if args.zoom_in_target_size < 1:
        return f'--zoom-in-target-size must be >= 1, got {args.zoom_in_target_size}'
    if args.limit_longest_size is not None and args.limit_longest_size < 1:
        return f'--limit-longest-size must be >= 1 (or left out for no limit), got {args.limit_longest_size}'
    if args.threads is not None and args.threads < 1:
        return f'--threads must be >= 1, got {args.threads}'
    if args.gpu is not None and args.gpu < 0:
        return f'--gpu must be a GPU id >= 0, got {args.gpu}'
    if not dataset_names(args):
        return f'--datasets names no dataset: {args.datasets!r}; e.g. --datasets=GrabCut,Berkeley'
    if args.config is not None and not Path(args.config).is_file():
        return f'config file not found: {args.config}; pass an existing config.yml or leave --config out'
    return None


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    """Parse and validate the flags; a bad value exits with code 2 and a one-line message."""
    parser = build_parser()
    args = parser.parse_args(argv)
    problem = validate_args(args)
    if problem:
        parser.error(problem)
    return args


def dataset_names(args: argparse.Namespace) -> List[str]:
    """The names of ``--datasets``, in order, without blanks."""
    return [d.strip() for d in args.datasets.split(',') if d.strip()]


def check_mode(mode: str, model: torch.nn.Module, checkpoint: Optional[str]) -> None:
    """Raise InputError when ``mode`` cannot evaluate ``model`` (a click model in extreme mode, f-BRS on a
    network without f-BRS insertion points)."""
    from isegm.inference.predictors import supported_brs_modes
    name = checkpoint or 'the bundled click model'
    if mode == 'extreme':
        raise InputError(f'{name} is a click model ({type(model).__name__}); extreme mode needs an '
                         'extreme-point (DEXTR) checkpoint: pass one with --checkpoint, or evaluate this model '
                         'in a click mode such as NoBRS')
    supported = supported_brs_modes(model)
    if mode not in supported:
        raise InputError(f'{name} ({type(model).__name__}) does not support {mode}: f-BRS needs an HRNet or '
                         f'DeepLab network; modes this model supports: {", ".join(supported)}')


def evaluate_click_model(args, model, dataset, device):
    from isegm.inference.evaluation import evaluate_dataset
    from isegm.inference.predictors import get_predictor
    zoom = None if args.no_zoom_in else {'target_size': args.zoom_in_target_size}
    predictor_params = {'max_size': args.limit_longest_size} if args.limit_longest_size else None
    predictor = get_predictor(model, args.mode, device, prob_thresh=args.thresh, with_flip=not args.no_flip,
                              zoom_in_params=zoom, predictor_params=predictor_params)
    target = 1.01 if args.iou_analysis else args.target_iou
    all_ious, elapsed, spc = evaluate_dataset(dataset, predictor, pred_thr=args.thresh, max_iou_thr=target,
                                              min_clicks=args.min_n_clicks, max_clicks=args.n_clicks,
                                              progress=True)
    n_clicks = sum(len(i) for i in all_ious)
    return all_ious, sum(t * len(i) for t, i in zip(spc, all_ious)) / max(n_clicks, 1)


def evaluate_extreme_model(args, model, dataset, device):
    from isegm.utils.extreme_geometry import extreme_points_from_mask
    from isegm.inference.evaluation import get_iou
    from isegm.inference.predictors.extreme import ExtremePointsPredictor
    predictor = ExtremePointsPredictor(model, device=device, threshold=args.thresh,   # DEXTR's eval: 0.5
                                       grabcut_refine=False if args.no_grabcut_refine else None)
    ious, start = [], time.time()
    for i in tqdm(range(len(dataset)), desc=dataset.name, leave=False):
        s = dataset.get_sample(i)
        pred = predictor.predict_mask(s.image, extreme_points_from_mask(s.gt_mask == 1))
        ious.append(np.array([get_iou(s.gt_mask, pred)]))   # the 128 band of GrabCut (-1) ignored
    return ious, time.time() - start


def main(argv: Optional[List[str]] = None) -> int:
    """Run the evaluation; returns the exit code (2 with ``error: ...`` on stderr for a user error)."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format='%(levelname)s: %(message)s')
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        return run(args)
    except (IsegmError, OSError) as e:   # bad checkpoint, config, mode or save folder: the message is enough
        print(f'error: {e}', file=sys.stderr)
        return 2


def run(args: argparse.Namespace) -> int:
    """The evaluation proper (flags already validated); IsegmError and OSError reach the caller."""
    cfg = load_config(args.config)
    from isegm.model.checkpoint import load_model, resolve_device
    device = resolve_device(args.gpu if args.gpu is not None else 'cpu')
    task = 'extreme' if args.mode == 'extreme' else 'click'
    model, info = load_model(args.checkpoint, device=device, task=task, return_info=True)
    is_extreme = getattr(model, 'task', 'click') == 'extreme'
    mode = 'extreme' if is_extreme else args.mode   # an extreme checkpoint in a click mode: extreme evaluation
    if not is_extreme:
        check_mode(mode, model, args.checkpoint)

    from isegm.data.datasets.eval_sets import DATASETS, get_eval_dataset
    datasets = []
    for name in dataset_names(args):
        try:
            datasets.append((name, get_eval_dataset(name, cfg, max_samples=args.max_samples)))
        except IsegmError as e:
            print(f'skipping {name}: {e}', file=sys.stderr)
        except KeyError:   # a config.yml without this dataset's *_PATH entry
            print(f'skipping {name}: no {DATASETS[name][1]} in the config; add it to config.yml', file=sys.stderr)
    if not datasets:
        print('error: no dataset could be evaluated', file=sys.stderr)
        return 2
    save_dir = Path(args.save_dir or Path(cfg['EXPS_PATH']) / 'evaluation_logs') / info['name'] / mode
    try:
        save_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OSError(f'cannot create the save folder {save_dir} ({e.strerror or e}); '
                      'pass a writable --save-dir') from e

    rows, curves = [], {}
    for name, dataset in datasets:
        if is_extreme:
            ious, elapsed = evaluate_extreme_model(args, model, dataset, device)
            miou = float(np.mean([i[0] for i in ious]))
            rows.append({'dataset': name, 'samples': len(ious), 'mIoU@4pts': miou,
                         's/object': elapsed / len(ious)})
        else:
            from isegm.inference.evaluation import summarize
            ious, spc = evaluate_click_model(args, model, dataset, device)
            s = summarize(ious, max_clicks=args.n_clicks)
            rows.append({'dataset': name, 'samples': len(ious), 'NoC@85': s['NoC@85'], 'NoC@90': s['NoC@90'],
                         'NoF@85': s['NoF@85'], 'NoF@90': s['NoF@90'], 'mIoU@1': s['mIoU@1'],
                         'mIoU@5': s['mIoU@5'], 's/click': spc})
            curves[name] = ious
        np.savez_compressed(save_dir / f'{name}_ious.npz', **{f's{i:04d}': v for i, v in enumerate(ious)})
    print_table(rows, title=f'{info["name"]} ({info["format"]}), mode {mode}, device {device}')
    (save_dir / 'summary.json').write_text(json.dumps(rows, indent=1))
    if curves and not args.no_plot:
        plot_curves(curves, args.n_clicks, save_dir / 'miou_vs_clicks.png', info['name'])
    print(f'per-sample IoUs, summary and plot saved in {save_dir}')
    return 0


def print_table(rows, title=''):
    cols = list(rows[0].keys())
    fmt = lambda v: f'{v:.3f}' if isinstance(v, float) else str(v)  # noqa: E731
    widths = [max(len(c), *(len(fmt(r.get(c, ''))) for r in rows)) for c in cols]
    line = '+' + '+'.join('-' * (w + 2) for w in widths) + '+'
    if title:
        print(title)
    print(line)
    print('| ' + ' | '.join(c.ljust(w) for c, w in zip(cols, widths)) + ' |')
    print(line)
    for r in rows:
        print('| ' + ' | '.join(fmt(r.get(c, '')).rjust(w) for c, w in zip(cols, widths)) + ' |')
    print(line)


def plot_curves(curves, n_clicks, path, title):
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, ious in curves.items():
        padded = np.array([np.pad(i, (0, n_clicks - len(i)), mode='edge') if len(i) else np.zeros(n_clicks)
                           for i in ious])
        ax.plot(np.arange(1, n_clicks + 1), padded.mean(axis=0), marker='o', ms=3, label=name)
    ax.set_xlabel('clicks')
    ax.set_ylabel('mIoU')
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


if __name__ == '__main__':
    sys.exit(main())
