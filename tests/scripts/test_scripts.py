"""The command-line tools run end to end on the shared benchmark data (small slices of it)."""
import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from tests.conftest import ROOT

RITM_CKPT = 'ritm/hrnet18s_cocolvis_itermask_3p/checkpoint.pth'


def _run(args, timeout=600):
    return subprocess.run([sys.executable] + args, cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def test_evaluate_model_click(reference_dir, datasets_dir, tmp_path):
    res = _run(['scripts/evaluate_model.py', 'NoBRS', f'--checkpoint={reference_dir / RITM_CKPT}',
                '--datasets=GrabCut,Berkeley', '--max-samples', '2', '--n-clicks', '3', '--threads', '2',
                '--save-dir', str(tmp_path)])
    assert res.returncode == 0, res.stderr[-3000:]
    assert 'NoC@90' in res.stdout and 'GrabCut' in res.stdout and 'Berkeley' in res.stdout
    out = tmp_path / 'checkpoint' / 'NoBRS'
    summary = json.loads((out / 'summary.json').read_text())
    assert [r['dataset'] for r in summary] == ['GrabCut', 'Berkeley']
    for r in summary:
        assert r['samples'] == 2 and 1 <= r['NoC@90'] <= 3 and 0 <= r['mIoU@1'] <= 1
    ious = np.load(out / 'GrabCut_ious.npz')
    assert len(ious.files) == 2 and all(1 <= len(ious[k]) <= 3 for k in ious.files)
    assert (out / 'miou_vs_clicks.png').stat().st_size > 1000


def test_evaluate_model_extreme(reference_dir, reference_weights, datasets_dir, tmp_path):
    schema = reference_weights.load_schema(reference_dir / 'dextr' / 'schema.json')
    ckpt = tmp_path / 'dextr_standin.pth'
    torch.save(reference_weights.reference_state_dict(schema), ckpt)
    res = _run(['scripts/evaluate_model.py', 'extreme', f'--checkpoint={ckpt}', '--datasets=GrabCut',
                '--max-samples', '1', '--save-dir', str(tmp_path)])
    assert res.returncode == 0, res.stderr[-3000:]
    assert 'mIoU@4pts' in res.stdout


def test_evaluate_model_bad_checkpoint_is_clear(tmp_path):
    bad = tmp_path / 'bad.pth'
    bad.write_bytes(b'garbage')
    res = _run(['scripts/evaluate_model.py', 'NoBRS', f'--checkpoint={bad}', '--datasets=GrabCut'])
    assert res.returncode == 2
    assert 'error:' in res.stderr and 'Traceback' not in res.stderr


def test_benchmark_prints_table(reference_dir, datasets_dir):
    res = _run(['scripts/benchmark.py', f'--checkpoint={reference_dir / RITM_CKPT}', '--modes', 'NoBRS',
                '--images', '124080', '--clicks', '2', '--threads', '2', '--repeat', '2'])
    assert res.returncode == 0, res.stderr[-3000:]
    header, _, row = res.stdout.strip().splitlines()[-3:]
    names = [c.strip() for c in header.strip('|').split('|')]
    cells = dict(zip(names, (c.strip() for c in row.strip('|').split('|'))))
    assert cells['mode'] == 'NoBRS' and cells['runs'] == '2'
    assert cells['clicks'] == '4'   # 2 processes x 1 image x 2 clicks, pooled
    assert float(cells['median_s']) > 0 and float(cells['first_cold_s']) > 0 and float(cells['peak_rss_mb']) > 100


def test_benchmark_annotation_prints_its_table(datasets_dir):
    res = _run(['scripts/benchmark.py', '--annotation', '--images', '124080', '--image-size', '900x600'])
    assert res.returncode == 0, res.stderr[-3000:]
    assert '124080 resized to 900x600' in res.stdout
    rows = {}
    for line in res.stdout.splitlines():
        cells = [c.strip() for c in line.strip('|').split('|')]
        if line.startswith('|') and len(cells) == 2 and cells[1].replace('.', '').isdigit():
            rows[cells[0]] = float(cells[1])
    assert len(rows) == 8 and all(t > 0 for t in rows.values())
    assert any(k.startswith('save after one more object') for k in rows)
    assert any(k.startswith('click right after Space') for k in rows)


def test_benchmark_annotation_memory_annotates_and_reports_each_stage(datasets_dir):
    res = _run(['scripts/benchmark.py', '--annotation-memory', '6', '--images', '124080', '--image-size', '600x400'])
    assert res.returncode == 0, res.stderr[-3000:]
    assert '124080 resized to 600x400' in res.stdout
    rows = {}
    for line in res.stdout.splitlines():
        cells = [c.strip() for c in line.strip('|').split('|')]
        if line.startswith('|') and len(cells) == 3 and cells[1].isdigit():
            rows[cells[0]] = (int(cells[1]), int(cells[2]))
    # every object (two clicks on a free spot of the grid + Space) was finished and kept
    assert list(rows) == ['model loaded', 'image open', '1 objects finished (1 kept)', '5 objects finished (5 kept)',
                          '6 objects finished (6 kept)']
    assert all(100 < rss <= peak for rss, peak in rows.values())
