"""scripts/evaluate_model.py refuses bad input with one ``error: ...`` message and exit code 2, no traceback,
and creates no save folder before the arguments are known to be good."""
import subprocess
import sys
from pathlib import Path
from typing import List

import pytest

from tests.conftest import ROOT

# the cheapest real run, should a check be missing: one sample, one click
BASE = ['NoBRS', '--datasets=GrabCut', '--max-samples', '1', '--n-clicks', '1', '--threads', '1', '--no-plot']


def _run(args: List[str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, 'scripts/evaluate_model.py'] + args, cwd=ROOT, capture_output=True,
                          text=True, timeout=120)


def _assert_clean_error(res: subprocess.CompletedProcess, *fragments: str) -> None:
    assert res.returncode == 2, res.stderr[-3000:]
    assert 'Traceback' not in res.stderr, res.stderr[-3000:]
    assert 'error: ' in res.stderr
    for fragment in fragments:
        assert fragment in res.stderr, res.stderr[-3000:]


@pytest.mark.parametrize('flags, message', [
    (['--n-clicks', '0'], '--n-clicks must be >= 1'),
    (['--n-clicks', '-3'], '--n-clicks must be >= 1'),
    (['--max-samples', '0'], '--max-samples must be >= 1'),
    (['--thresh', '1.5'], '--thresh is a probability threshold and must be in (0, 1)'),
    (['--zoom-in-target-size', '0'], '--zoom-in-target-size must be >= 1'),
    (['--limit-longest-size', '-1'], '--limit-longest-size must be >= 1'),
    (['--config', '/nonexistent/config.yml'], 'config file not found: /nonexistent/config.yml'),
])
def test_bad_flags_are_refused_before_anything_is_created(flags: List[str], message: str, tmp_path: Path) -> None:
    save_dir = tmp_path / 'out'
    res = _run(BASE + flags + ['--save-dir', str(save_dir)])
    _assert_clean_error(res, message)
    assert not save_dir.exists()


def test_click_model_in_extreme_mode_is_explained(tmp_path: Path) -> None:
    res = _run(['extreme'] + BASE[1:] + ['--checkpoint=isegm_compact_click', '--save-dir', str(tmp_path / 'out')])
    _assert_clean_error(res, 'isegm_compact_click is a click model', 'extreme mode needs an extreme-point')
    assert not (tmp_path / 'out').exists()


def test_fbrs_on_a_model_without_insertion_points_names_the_supported_modes(tmp_path: Path) -> None:
    res = _run(['f-BRS-B'] + BASE[1:] + ['--save-dir', str(tmp_path / 'out')])
    _assert_clean_error(res, 'does not support f-BRS-B', 'NoBRS, RGB-BRS, DistMap-BRS')
    assert not (tmp_path / 'out').exists()


def test_broken_yaml_config_is_an_error_naming_the_file(tmp_path: Path) -> None:
    config = tmp_path / 'config.yml'
    config.write_text('EXPS_PATH: [unclosed\n')
    res = _run(BASE + ['--config', str(config), '--save-dir', str(tmp_path / 'out')])
    _assert_clean_error(res, f'config file {config} is not valid YAML')


def test_config_without_the_dataset_path_is_explained(tmp_path: Path) -> None:
    config = tmp_path / 'config.yml'
    config.write_text(f'EXPS_PATH: {tmp_path / "exps"}\n')
    res = _run(BASE + ['--config', str(config)])
    _assert_clean_error(res, 'no GRABCUT_PATH in the config', 'error: no dataset could be evaluated')
    assert not (tmp_path / 'exps').exists()


def test_uncreatable_save_dir_is_an_error(datasets_dir: Path, tmp_path: Path) -> None:
    blocker = tmp_path / 'a_file'
    blocker.write_text('not a folder')
    res = _run(BASE + ['--save-dir', str(blocker / 'out')])
    _assert_clean_error(res, 'cannot create the save folder', 'pass a writable --save-dir')
