"""Click maps: the CPU disk maps computed per click box equal the full-image formulation bit for bit."""
import random

import pytest
import torch

from isegm.model.ops import DistMaps


def _random_points(rng: random.Random, batch: int, per_group: int, rows: int, cols: int) -> torch.Tensor:
    points = torch.full((batch, 2 * per_group, 3), -1.0)
    for b in range(batch):
        for p in range(2 * per_group):
            if rng.random() < 0.3:
                continue   # absent click (padding row)
            y = rng.uniform(-15, rows + 15)   # some clicks just outside the image
            x = rng.uniform(-15, cols + 15)
            if rng.random() < 0.3:
                y, x = float(int(y)), float(int(x))   # integer positions, as real clicks
            points[b, p] = torch.tensor([y, x, p])
    return points


@pytest.mark.parametrize('radius,scale', [(5, 1.0), (3.3, 1.0), (5, 0.5), (2, 1.37), (0.4, 1.0)])
def test_disk_boxes_equal_full_maps(radius, scale):
    rng = random.Random(hash((radius, scale)) & 0xffff)
    maps = DistMaps(norm_radius=radius, spatial_scale=scale, use_disks=True)
    for _ in range(20):
        batch, per_group = rng.randint(1, 3), rng.randint(1, 6)
        rows, cols = rng.randint(1, 90), rng.randint(1, 90)
        points = _random_points(rng, batch, per_group, rows, cols)
        fast = maps.get_coord_features(points, batch, rows, cols)
        full = maps._full_maps(points, rows, cols)
        assert fast.shape == full.shape == (batch, 2, rows, cols)
        assert torch.equal(fast, full)


def test_disk_maps_mark_the_clicks():
    maps = DistMaps(norm_radius=2, use_disks=True)
    points = torch.tensor([[[10.0, 20.0, 0], [-1, -1, -1], [30.0, 5.0, 1], [-1, -1, -1]]])
    out = maps.get_coord_features(points, 1, 40, 40)
    assert out[0, 0, 10, 20] == 1 and out[0, 0, 12, 20] == 1 and out[0, 0, 13, 20] == 0
    assert out[0, 1, 30, 5] == 1 and out[0, 1, 10, 20] == 0
    assert out[0, 0].sum() == 13 and out[0, 1].sum() == 13   # lattice points within radius 2


def test_non_finite_clicks_mark_nothing_as_in_full_maps():
    maps = DistMaps(norm_radius=3, use_disks=True)
    points = torch.tensor([[[float('nan'), 5.0, 0], [4.0, float('inf'), 1], [6.0, 6.0, 2], [-1, -1, -1]]])
    fast = maps.get_coord_features(points, 1, 16, 16)
    assert torch.equal(fast, maps._full_maps(points, 16, 16))
    assert fast[0, 0].sum() == 0 and fast[0, 1, 6, 6] == 1
