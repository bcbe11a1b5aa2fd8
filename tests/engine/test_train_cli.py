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
