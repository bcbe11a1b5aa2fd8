"""scripts/export_bundled.py / isegm.model.export: best epoch by validation, fp16 storage, RITM format,
loaded back by isegm.load_model in float32 with the same outputs."""
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch

import isegm
from isegm.errors import CheckpointError
from isegm.inference.predictors.extreme import ExtremePointsPredictor
from isegm.model.export import best_checkpoint, export_bundled, to_half_state_dict
from isegm.model.is_compact_model import CompactClickModel, CompactExtremeModel

ROOT = Path(__file__).resolve().parents[2]


def _script():
    spec = importlib.util.spec_from_file_location('export_bundled', ROOT / 'scripts' / 'export_bundled.py')
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _fake_experiment(tmp_path, model, metric, values):
    """An experiment folder as train.py leaves it: checkpoints/NNN.pth + metrics.jsonl."""
    exp = tmp_path / 'exp'
    (exp / 'checkpoints').mkdir(parents=True)
    with open(exp / 'metrics.jsonl', 'w') as f:
        for epoch, value in enumerate(values):
            torch.manual_seed(epoch)
            for p in model.parameters():  # distinct weights per epoch
                p.data.normal_(0, 0.05)
            ckpt = {'state_dict': {k: v.clone() for k, v in model.state_dict().items()}, 'config': model._config,
                    'info': {'training_data': 'unit-test pool', 'epoch': epoch, 'stats': {metric: value}}}
            torch.save(ckpt, exp / 'checkpoints' / f'{epoch:03d}.pth')
            f.write(json.dumps({'epoch': epoch, 'train_loss': 1.0 / (epoch + 1), 'epoch_time_s': 10.0,
                                metric: value}) + '\n')
    return exp


@pytest.fixture(scope='module')
def click_model():
    return CompactClickModel(backbone='lite0', decoder_ch=16, use_disks=True, norm_radius=5,
                             with_prev_mask=True, with_aux_output=True).eval()


def test_best_epoch_is_chosen_by_validation(tmp_path, click_model):
    exp = _fake_experiment(tmp_path, click_model, 'val_NoC@90', [9.0, 4.5, 6.0])
    path, row = best_checkpoint(exp)
    assert path.name == '001.pth' and row['epoch'] == 1
    path, row = best_checkpoint(exp, 'train_loss')  # lower is better for losses too
    assert path.name == '002.pth'


def test_noc_ties_go_to_the_better_iou(tmp_path, click_model):
    exp = _fake_experiment(tmp_path, click_model, 'val_NoC@90', [20.0, 20.0, 20.0])
    rows = [json.loads(line) for line in (exp / 'metrics.jsonl').read_text().splitlines()]
    for row, iou in zip(rows, [0.1, 0.3, 0.2]):
        row['val_IoU@5'] = iou
    (exp / 'metrics.jsonl').write_text(''.join(json.dumps(r) + '\n' for r in rows))
    assert best_checkpoint(exp)[0].name == '001.pth'


def test_best_epoch_maximises_iou(tmp_path):
    model = CompactExtremeModel(decoder_ch=16, input_size=64, heatmap_sigma=2.5)
    exp = _fake_experiment(tmp_path, model, 'val_mIoU', [0.5, 0.8, 0.7])
    assert best_checkpoint(exp)[0].name == '001.pth'


def test_no_finished_epoch_is_an_error(tmp_path):
    (tmp_path / 'checkpoints').mkdir()
    with pytest.raises(CheckpointError, match='no epoch'):
        best_checkpoint(tmp_path)


def test_exported_click_model_is_fp16_small_and_loads_as_float32(tmp_path, click_model):
    exp = _fake_experiment(tmp_path, click_model, 'val_NoC@90', [9.0, 4.5])
    summary = tmp_path / 'summary.json'
    summary.write_text(json.dumps([{'dataset': 'GrabCut', 'samples': 50, 'NoC@85': 2.0, 'NoC@90': 3.0}]))
    out = tmp_path / 'weights' / 'm_bundled.pth'
    rc = _script().main([str(exp), str(out), '--train-command', 'python train.py X', '--eval-summary', str(summary)])
    assert rc == 0 and out.is_file()
    assert out.stat().st_size < 20 * 2 ** 20
    obj = torch.load(out, map_location='cpu', weights_only=True)
    assert set(obj) == {'state_dict', 'config', 'info'}
    floats = [v for v in obj['state_dict'].values() if v.is_floating_point()]
    assert floats and all(v.dtype == torch.float16 for v in floats)
    info = obj['info']
    assert info['epochs_trained'] == 2 and info['selected_by']['epoch'] == 1
    assert info['training_data'] == 'unit-test pool' and info['training_time_s'] == 20.0
    assert info['commands']['train'] == 'python train.py X'
    assert info['metrics']['GrabCut']['NoC@90'] == 3.0

    model = isegm.load_model(str(out), device='cpu')
    assert all(p.dtype == torch.float32 for p in model.parameters())
    ref = CompactClickModel(backbone='lite0', decoder_ch=16, use_disks=True, norm_radius=5,
                            with_prev_mask=True, with_aux_output=True)
    ref.load_state_dict(torch.load(exp / 'checkpoints' / '001.pth', weights_only=True)['state_dict'])
    ref.eval()
    torch.manual_seed(0)
    x = torch.rand(1, 4, 96, 96)
    points = torch.tensor([[[40., 50., 0.], [-1., -1., -1.]]])
    with torch.no_grad():
        got = torch.sigmoid(model(x, points)['instances'])
        want = torch.sigmoid(ref(x, points)['instances'])
    assert float((got - want).abs().max()) < 2e-2
    assert float((got - want).abs().max()) > 0  # really stored in lower precision


def test_export_refuses_oversized_and_foreign_files(tmp_path, click_model):
    exp = _fake_experiment(tmp_path, click_model, 'val_NoC@90', [5.0])
    with pytest.raises(CheckpointError, match='limit'):
        export_bundled(exp / 'checkpoints' / '000.pth', tmp_path / 'big.pth', max_mb=0.1)
    assert not (tmp_path / 'big.pth').exists()
    torch.save({'a': torch.zeros(2)}, tmp_path / 'bare.pth')
    with pytest.raises(CheckpointError, match='config'):
        export_bundled(tmp_path / 'bare.pth', tmp_path / 'out.pth')


def test_half_keeps_out_of_range_tensors_in_float32():
    sd = to_half_state_dict({'w': torch.tensor([1.0, 2.0]), 'big': torch.tensor([1e6]),
                             'n': torch.tensor(3, dtype=torch.int64)})
    assert sd['w'].dtype == torch.float16 and sd['big'].dtype == torch.float32 and sd['n'].dtype == torch.int64


def test_extreme_model_carries_input_size_and_sigma(tmp_path):
    model = CompactExtremeModel(decoder_ch=16, input_size=64, heatmap_sigma=2.5, crop_pad=12)
    exp = _fake_experiment(tmp_path, model, 'val_mIoU', [0.6])
    out = export_bundled(best_checkpoint(exp)[0], tmp_path / 'x_bundled.pth')
    loaded = isegm.load_model(str(out), task='extreme')
    assert (loaded.input_size, loaded.heatmap_sigma) == (64, 2.5)
    image = np.zeros((120, 150, 3), np.uint8)
    pts = [[60, 10], [60, 140], [5, 75], [110, 75]]
    predictor = ExtremePointsPredictor(loaded)
    assert (predictor.input_size, predictor.sigma, predictor.pad) == (64, 2.5, 12)   # what it was trained with
    assert predictor.threshold == 0.5   # the compact model's own (validated at 0.5), not DEXTR's 0.8
    assert predictor.prepare(image, pts).net_input.shape == (4, 64, 64)
    assert predictor.predict(image, pts).shape == (120, 150)
    explicit = ExtremePointsPredictor(loaded, input_size=96, sigma=4.0, pad=50)  # the caller's values win
    assert (explicit.input_size, explicit.sigma, explicit.pad) == (96, 4.0, 50)


def test_models_without_preferences_keep_dextr_defaults():
    predictor = ExtremePointsPredictor(torch.nn.Conv2d(4, 1, 1))
    assert (predictor.input_size, predictor.sigma, predictor.threshold) == (512, 10.0, 0.8)
    assert ExtremePointsPredictor(torch.nn.Conv2d(4, 1, 1), threshold=0.3).threshold == 0.3
