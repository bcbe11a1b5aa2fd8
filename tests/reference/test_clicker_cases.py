"""The evaluation clicker reproduces RITM's next click on all cases of clicker_cases.npz."""
import numpy as np
import pytest

from isegm.inference.clicker import Click, Clicker

NUM_CASES = 21


@pytest.fixture(scope='module')
def cases(reference_dir):
    return np.load(reference_dir / 'clicker_cases.npz')


def _case_names(cases):
    return [str(n) for n in cases['case_names']]


def test_all_cases_present(cases):
    assert len(_case_names(cases)) == NUM_CASES


@pytest.mark.parametrize('index', range(NUM_CASES))
def test_next_click_matches_reference(cases, index):
    name = _case_names(cases)[index]
    gt = cases[f'{name}/gt']
    pred = cases[f'{name}/pred']
    prev = cases[f'{name}/prev_clicks']
    expected = cases[f'{name}/next_click']

    clicker = Clicker(gt_mask=gt)
    for y, x, pos in prev:
        clicker.add_click(Click(is_positive=bool(pos), coords=(int(y), int(x))))
    click = clicker.make_next_click(pred)

    got = (int(click.coords[0]), int(click.coords[1]), int(click.is_positive))
    assert got == tuple(int(v) for v in expected), name
    assert click.indx == int(cases[f'{name}/click_index'])
    assert tuple(int(v) for v in cases[f'{name}/next_click_fbrs']) == got
