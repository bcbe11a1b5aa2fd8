"""train.py refuses bad input with one ``error: ...`` message and exit code 2, and leaves no experiment
folder behind when it stops before training."""
import subprocess
import sys
from pathlib import Path
from typing import List

import pytest

import train
from tests.conftest import ROOT

REAL_RECIPE = 'models/compact/efflite0_click_itermask.py'


def _config(tmp_path: Path, **extra: str) -> Path:
    """A config.yml whose EXPS_PATH is tmp_path/exps."""
    lines = [f'EXPS_PATH: "{tmp_path / "exps"}"'] + [f'{k}: "{v}"' for k, v in extra.items()]
    path = tmp_path / 'config.yml'
    path.write_text('\n'.join(lines) + '\n')
    return path


def _main(argv: List[str]) -> int:
    """train.main's exit code, whether it returns it or argparse exits."""
    try:
        return train.main(argv)
    except SystemExit as e:
        return e.code


def _recipe(tmp_path: Path, body: str) -> Path:
    path = tmp_path / 'my_recipe.py'
    path.write_text(body)
    return path


@pytest.mark.parametrize('recipe, message', [
    ('models/does_not_exist.py', 'recipe file not found: models/does_not_exist.py'),
    ('models/compact', 'models/compact is a folder, not a recipe file'),
    ('README.md', 'README.md is not a Python recipe'),
])
def test_bad_recipe_path_is_refused_without_a_folder(recipe: str, message: str, tmp_path: Path, capsys) -> None:
    assert _main([recipe, '--config', str(_config(tmp_path))]) == 2
    err = capsys.readouterr().err
    assert 'error: ' in err and message in err
    assert not (tmp_path / 'exps').exists()


def test_missing_config_file_is_refused(tmp_path: Path, monkeypatch, capsys) -> None:
    import isegm.utils.config
    monkeypatch.setattr(isegm.utils.config, 'PROJECT_ROOT', tmp_path)   # defaults would land in tmp_path
    recipe = _recipe(tmp_path, 'def main(ctx):\n    raise AssertionError("must not run")\n')
    assert _main([str(recipe), '--config', str(tmp_path / 'missing.yml')]) == 2
    assert f'config file not found: {tmp_path / "missing.yml"}' in capsys.readouterr().err
    assert not (tmp_path / 'experiments').exists()


def test_recipe_without_main_leaves_no_folder(tmp_path: Path, capsys) -> None:
    recipe = _recipe(tmp_path, 'X = 1\n')
    assert _main([str(recipe), '--config', str(_config(tmp_path))]) == 2
    assert 'has no main(ctx) function' in capsys.readouterr().err
    assert not (tmp_path / 'exps').exists()


def test_unknown_resume_exp_is_an_error(tmp_path: Path, capsys) -> None:
    recipe = _recipe(tmp_path, 'def main(ctx):\n    raise AssertionError("must not run")\n')
    assert _main([str(recipe), '--config', str(_config(tmp_path)), '--resume-exp', '007']) == 2
    assert "--resume-exp='007' matches 0 folders" in capsys.readouterr().err
    assert not (tmp_path / 'exps').exists()


def test_recipe_failing_before_training_leaves_no_folder(tmp_path: Path, capsys) -> None:
    recipe = _recipe(tmp_path, 'from isegm.errors import IsegmError\n\n\n'
                               'def main(ctx):\n    raise IsegmError("TRAIN_POOL_PATH is not set")\n')
    assert _main([str(recipe), '--config', str(_config(tmp_path))]) == 2
    assert 'error: TRAIN_POOL_PATH is not set' in capsys.readouterr().err
    assert not (tmp_path / 'exps').exists()


def test_real_recipe_with_missing_training_data_end_to_end(tmp_path: Path) -> None:
    missing = tmp_path / 'no_pool'
    config = _config(tmp_path, TRAIN_POOL_PATH=str(missing))
    res = subprocess.run([sys.executable, 'train.py', REAL_RECIPE, '--config', str(config), '--workers', '0',
                          '--threads', '1', '--no-pretrained'], cwd=ROOT, capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 2, res.stderr[-3000:]
    assert 'Traceback' not in res.stderr and 'error: ' in res.stderr and str(missing) in res.stderr
    assert not (tmp_path / 'exps').exists()


TINY_RECIPE = '''
from isegm.engine.recipe_utils import run_click_training
from tests.engine.tiny import ShapesDataset, TinyClickModel


def main(ctx):
    model = TinyClickModel(width=WIDTH, use_disks=True, norm_radius=3, with_prev_mask=True, use_rgb_conv=False)
    run_click_training(ctx, model, ShapesDataset(8), num_epochs=1, batch_size=4, milestones=[10])
'''


def _tiny_checkpoint(path: Path, width: int) -> dict:
    import torch
    from tests.engine.tiny import TinyClickModel
    torch.manual_seed(123)
    model = TinyClickModel(width=width, use_disks=True, norm_radius=3, with_prev_mask=True, use_rgb_conv=False)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    torch.save({'state_dict': state, 'config': model._config, 'info': {}}, path)
    return state


def test_weights_flag_starts_training_from_a_checkpoint(tmp_path: Path) -> None:
    import torch
    recipe = _recipe(tmp_path, TINY_RECIPE.replace('WIDTH', '16'))
    given = _tiny_checkpoint(tmp_path / 'start.pth', width=16)
    argv = [str(recipe), '--config', str(_config(tmp_path)), '--workers', '0', '--max-iters', '1',
            '--weights', str(tmp_path / 'start.pth'), '--exp-name', 'ft']
    assert _main(argv) == 0
    ckpt = torch.load(next((tmp_path / 'exps').rglob('last_checkpoint.pth')), weights_only=True)
    assert ckpt['info']['initial_weights'] == str(tmp_path / 'start.pth')
    out = ckpt['state_dict']
    weights = [k for k, v in given.items() if v.dtype.is_floating_point and 'running' not in k]
    # one Adam step at lr 5e-4 moves each weight by about 5e-4; a fresh initialisation is far away
    assert max(float((out[k] - given[k]).abs().max()) for k in weights) < 2e-3
    assert any(not torch.equal(out[k], given[k]) for k in weights)   # and it did train


def test_weights_of_another_model_are_refused(tmp_path: Path, capsys) -> None:
    recipe = _recipe(tmp_path, TINY_RECIPE.replace('WIDTH', '16'))
    _tiny_checkpoint(tmp_path / 'other.pth', width=8)
    argv = [str(recipe), '--config', str(_config(tmp_path)), '--workers', '0', '--max-iters', '1',
            '--weights', str(tmp_path / 'other.pth')]
    assert _main(argv) == 2
    err = capsys.readouterr().err
    assert "does not fit this recipe's model" in err and 'of the wrong shape' in err
    assert not list((tmp_path / 'exps').rglob('*.pth'))


@pytest.mark.parametrize('extra, message', [
    (['--weights', 'nowhere.pth'], '--weights: checkpoint file not found: nowhere.pth'),
    (['--weights', 'train.py', '--resume-exp', '000'], '--weights and --resume-exp exclude each other'),
])
def test_bad_weights_flags_are_refused(extra: List[str], message: str, tmp_path: Path, capsys) -> None:
    recipe = _recipe(tmp_path, 'def main(ctx):\n    raise AssertionError("must not run")\n')
    extra = [str(ROOT / a) if a == 'train.py' else a for a in extra]
    assert _main([str(recipe), '--config', str(_config(tmp_path))] + extra) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / 'exps').exists()
