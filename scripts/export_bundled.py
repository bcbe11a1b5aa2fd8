#!/usr/bin/env python
"""Export a training run as a shipped model: fp16 weights, RITM format ``{'state_dict', 'config', 'info'}``.

    # best epoch of an experiment by its held-out validation (NoC@90 / mIoU), into weights/
    python scripts/export_bundled.py experiments/compact/efflite0_click_itermask/001_cpu_bundled \\
        weights/isegm_compact_click_bundled.pth --train-command "python train.py ..."
    # after measuring it with scripts/evaluate_model.py, record the numbers in its info
    python scripts/export_bundled.py experiments/compact/efflite0_click_itermask/001_cpu_bundled \\
        weights/isegm_compact_click_bundled.pth --eval-summary experiments/evaluation_logs/.../summary.json

SOURCE is an experiment folder (the epoch with the best ``--metric`` in its metrics.jsonl is taken) or a
checkpoint file. ``info`` receives the training data and recipe (from the checkpoint), the epochs trained,
the training time up to that epoch, the selection metric, the commands and the measured metrics.
"""
from __future__ import annotations

import argparse
import json
import logging
import shlex
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from isegm.errors import IsegmError  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('source', help='experiment folder (best epoch by --metric) or a checkpoint file')
    p.add_argument('output', help='file to write, e.g. weights/isegm_compact_click_bundled.pth')
    p.add_argument('--metric', default=None,
                   help='metrics.jsonl column to select the epoch by (default: val_NoC@90, else val_mIoU)')
    p.add_argument('--train-command', default=None, help='the command that trained it (recorded in info)')
    p.add_argument('--eval-command', default=None, help='the command that measured it (recorded in info)')
    p.add_argument('--eval-summary', action='append', default=[],
                   help="summary.json written by scripts/evaluate_model.py (repeatable): stored as info['metrics']")
    p.add_argument('--note', default=None, help='free text stored as info["note"]')
    p.add_argument('--fp32', action='store_true', help='keep float32 weights (default: fp16)')
    p.add_argument('--max-mb', type=float, default=20.0, help='refuse outputs larger than this (default 20)')
    return p.parse_args(argv)


def collect_info(args, exp_dir, row, rows):
    """The ``info`` entries this export adds."""
    info = {'commands': {'export': ' '.join(shlex.quote(a) for a in ['python', 'scripts/export_bundled.py']
                                            + list(sys.argv[1:] if args.argv is None else args.argv))}}
    if args.train_command:
        info['commands']['train'] = args.train_command
    if args.eval_command:
        info['commands']['evaluate'] = args.eval_command
    if row is not None:
        info['selected_by'] = {'metric': args.metric_used, 'value': row.get(args.metric_used),
                               'epoch': int(row['epoch'])}
        done = [r for r in rows if int(r['epoch']) <= int(row['epoch'])]
        info['training_time_s'] = round(sum(float(r.get('epoch_time_s', 0.0)) for r in done), 1)
        info['validation'] = {k: v for k, v in row.items() if k.startswith('val_')}
    if exp_dir is not None:
        info['experiment'] = str(exp_dir)
    metrics = {}
    for path in args.eval_summary:
        for r in json.loads(Path(path).read_text(encoding='utf-8')):
            metrics[r['dataset']] = {k: v for k, v in r.items() if k != 'dataset'}
    if metrics:
        info['metrics'] = metrics
    if args.note:
        info['note'] = args.note
    return info


def main(argv=None) -> int:
    args = parse_args(argv)
    args.argv = argv
    logging.basicConfig(level=logging.INFO, format='%(levelname)s: %(message)s')
    from isegm.model.export import best_checkpoint, default_metric, export_bundled, read_metrics
    source = Path(args.source)
    try:
        exp_dir = row = None
        rows = []
        if source.is_dir():
            exp_dir = source
            rows = read_metrics(exp_dir)
            args.metric_used = args.metric or (default_metric(rows) if rows else None)
            ckpt, row = best_checkpoint(exp_dir, args.metric_used)
        elif source.is_file():
            ckpt = source
        else:
            print(f'error: {source} is neither an experiment folder nor a checkpoint file', file=sys.stderr)
            return 2
        out = export_bundled(ckpt, args.output, collect_info(args, exp_dir, row, rows), half=not args.fp32,
                             max_mb=args.max_mb)
    except (IsegmError, OSError, ValueError) as e:
        print(f'error: {e}', file=sys.stderr)
        return 2
    size = out.stat().st_size / 2 ** 20
    where = f' (epoch {row["epoch"]}, {args.metric_used}={row[args.metric_used]:.4g})' if row else ''
    print(f'exported {ckpt}{where} -> {out} ({size:.1f} MB)')
    return 0


if __name__ == '__main__':
    sys.exit(main())
