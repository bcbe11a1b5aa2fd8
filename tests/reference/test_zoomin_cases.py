"""ZoomIn reproduces RITM's crop / paste-back, step by step, on zoomin_cases.npz."""
import numpy as np
import pytest
import torch

from isegm.inference.clicker import Click
from isegm.inference.transforms import ZoomIn


@pytest.fixture(scope='module')
def steps(reference_dir):
    z = np.load(reference_dir / 'zoomin_cases.npz')
    image_nd = torch.cat([torch.from_numpy(z['image'].transpose(2, 0, 1)[None].astype(np.float32) / 255),
                          torch.from_numpy(z['prev_mask'].astype(np.float32))], dim=1)
    zoom = ZoomIn(target_size=400, skip_clicks=1, expansion_ratio=1.4, min_crop_size=200,
                  recompute_thresh_iou=0.5, prob_thresh=0.5)
    results = []
    for s in range(int(z['num_steps'])):
        clicks = [Click(is_positive=bool(p), coords=(int(y), int(x)), indx=i)
                  for i, (y, x, p) in enumerate(z[f'step{s}/clicks'])]
        net_input, tclicks = zoom.transform(image_nd, [clicks])
        roi, changed = zoom.object_roi, zoom.image_changed
        prob_in = torch.from_numpy(z[f'step{s}/prob_in'].astype(np.float32))[None, None]
        prob_out = zoom.inv_transform(prob_in)
        results.append(dict(net_input=net_input, tclicks=tclicks[0], roi=roi, changed=changed,
                            prob_out=prob_out))
    return z, results


@pytest.mark.parametrize('s', range(4))
def test_geometry(steps, s):
    z, results = steps
    r = results[s]
    expected_roi = tuple(int(v) for v in z[f'step{s}/object_roi'])
    assert (r['roi'] if r['roi'] is not None else (-1, -1, -1, -1)) == expected_roi
    assert r['changed'] == bool(z[f'step{s}/image_changed'])
    assert tuple(r['net_input'].shape[2:]) == tuple(int(v) for v in z[f'step{s}/net_input_shape'])
    got = np.array([(c.coords[0], c.coords[1], float(c.is_positive)) for c in r['tclicks']], dtype=np.float64)
    np.testing.assert_array_equal(got, z[f'step{s}/transformed_clicks'])
    assert [c.indx for c in r['tclicks']] == list(range(len(r['tclicks'])))


@pytest.mark.parametrize('s', range(4))
def test_prob_out_exact(steps, s):
    z, results = steps
    out = results[s]['prob_out']
    assert out.shape == (1, 1) + z['image'].shape[:2]
    np.testing.assert_array_equal(out[0, 0].numpy(), z[f'step{s}/prob_out'])


def test_step1_net_input_exact(steps):
    z, results = steps
    np.testing.assert_array_equal(results[1]['net_input'].numpy(), z['step1/net_input'])
