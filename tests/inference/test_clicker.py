"""Click / Clicker: numbering, history (undo/redo/state), bounds checks, the next-click oracle."""
import copy

import numpy as np
import pytest

from isegm.errors import InputError
from isegm.inference.clicker import Click, Clicker


def test_click_copy_and_coords_and_indx():
    c = Click(is_positive=True, coords=(3, 4), indx=2)
    assert c.coords_and_indx == (3, 4, 2)
    d = c.copy(coords=(5.5, 6))
    assert d.coords == (5.5, 6) and d.indx == 2 and d.is_positive
    assert c.coords == (3, 4)
    assert copy.deepcopy(c) == c
    with pytest.raises(InputError):
        c.copy(colour='red')


def test_clicks_are_numbered_in_order_with_offset():
    clicker = Clicker(click_indx_offset=3)
    clicker.add_click(Click(True, (1, 1)))
    clicker.add_click(Click(False, (2, 2)))
    assert [c.indx for c in clicker.get_clicks()] == [3, 4]
    assert clicker.num_pos_clicks == 1 and clicker.num_neg_clicks == 1
    assert len(clicker) == 2
    assert clicker.get_clicks(clicks_limit=1) == clicker.clicks_list[:1]


def test_add_click_does_not_mutate_callers_click():
    click = Click(True, (1, 1))
    Clicker().add_click(click)
    assert click.indx is None


def test_undo_redo():
    clicker = Clicker(image_shape=(10, 10))
    for i, pos in enumerate([True, False, True]):
        clicker.add_click(Click(pos, (i, i)))
    undone = clicker.undo_click()
    assert undone.coords == (2, 2) and len(clicker) == 2 and clicker.can_redo
    assert clicker.remove_last_click().coords == (1, 1)
    assert clicker.num_neg_clicks == 0
    assert clicker.redo_click().coords == (1, 1)
    assert clicker.redo_click().coords == (2, 2)
    assert clicker.redo_click() is None
    assert [c.indx for c in clicker.clicks_list] == [0, 1, 2]
    clicker.undo_click()
    clicker.add_click(Click(False, (5, 5)))   # a new click drops the redo history
    assert not clicker.can_redo and clicker.redo_click() is None
    assert [c.coords for c in clicker.clicks_list] == [(0, 0), (1, 1), (5, 5)]
    while clicker.undo_click() is not None:
        pass
    assert len(clicker) == 0 and clicker.undo_click() is None


def test_state_round_trip_is_a_deep_copy():
    clicker = Clicker()
    clicker.add_click(Click(True, (1, 2)))
    clicker.add_click(Click(False, (3, 4)))
    state = clicker.get_state()
    clicker.clicks_list[0].coords = (9, 9)
    clicker.reset_clicks()
    assert len(clicker) == 0
    clicker.set_state(state)
    assert [c.coords_and_indx for c in clicker.clicks_list] == [(1, 2, 0), (3, 4, 1)]
    assert clicker.num_pos_clicks == 1 and clicker.num_neg_clicks == 1


@pytest.mark.parametrize('coords', [(10, 0), (0, 12), (-1, 3), (3, -0.5), (float('nan'), 1)])
def test_clicks_outside_the_image_raise(coords):
    with pytest.raises(InputError, match='outside|finite'):
        Clicker(image_shape=(10, 12)).add_click(Click(True, coords))
    with pytest.raises(InputError):
        Clicker(gt_mask=np.zeros((10, 12), np.int32)).add_click(Click(True, coords))


def test_inside_clicks_accepted_at_the_edges():
    clicker = Clicker(gt_mask=np.zeros((10, 12), np.int32))
    clicker.add_click(Click(True, (9, 11)))
    clicker.add_click(Click(True, (0, 0)))
    assert len(clicker) == 2


def test_make_next_click_needs_gt_and_matching_shape():
    with pytest.raises(InputError, match='gt_mask'):
        Clicker().make_next_click(np.zeros((4, 4), bool))
    with pytest.raises(InputError, match='shape'):
        Clicker(gt_mask=np.zeros((4, 4), np.int32)).make_next_click(np.zeros((5, 4), bool))


def test_oracle_first_click_at_object_centre():
    gt = np.zeros((21, 31), np.int32)
    gt[5:16, 10:21] = 1                       # 11 x 11 square centred at (10, 15)
    clicker = Clicker(gt_mask=gt)
    click = clicker.make_next_click(np.zeros_like(gt, dtype=bool))
    assert click.is_positive and click.coords == (10, 15) and click.indx == 0


def test_oracle_negative_click_in_false_positive_and_ignore_respected():
    gt = np.zeros((20, 40), np.int32)
    gt[5:10, 5:10] = 1
    gt[:, 25:] = -1                            # ignored: a false positive there does not count
    pred = gt == 1
    pred = pred.copy()
    pred[2:18, 12:22] = True                   # a real false-positive block
    pred[:, 25:] = True
    click = Clicker(gt_mask=gt).make_next_click(pred)
    assert not click.is_positive
    assert 12 <= click.coords[1] < 22 and 2 <= click.coords[0] < 18


def test_oracle_does_not_click_the_same_pixel_twice():
    gt = np.zeros((9, 9), np.int32)
    gt[4, 4] = 1
    gt[1:4, 1:4] = 1
    clicker = Clicker(gt_mask=gt)
    first = clicker.make_next_click(np.zeros_like(gt, bool))
    second = clicker.make_next_click(np.zeros_like(gt, bool))
    assert first.coords != second.coords
    clicker.undo_click()
    third = clicker.make_next_click(np.zeros_like(gt, bool))
    assert third.coords == second.coords
