"""The f-BRS HRNet+OCR model reproduces the f-BRS fixture; architecture detection from bare state_dicts."""
import json

import numpy as np
import pytest
import torch

from isegm.errors import CheckpointError
from isegm.model.fbrs_models import FBRSHRNetModel, hrnet_params_from_fbrs_state_dict
from isegm.utils.serialization import build_from_config


@pytest.fixture(scope='module')
def fbrs_hrnet(reference_dir, reference_weights):
    fdir = reference_dir / 'fbrs' / 'hrnet18_ocr64_sbd'
    schema = reference_weights.load_schema(str(fdir / 'schema.json'))
    return fdir, schema, reference_weights.reference_state_dict(schema)


def test_detection_from_state_dict(fbrs_hrnet):
    fdir, _, sd = fbrs_hrnet
    params = hrnet_params_from_fbrs_state_dict(sd)
    assert params == {'width': 18, 'ocr_width': 64, 'small': False}
    detect = json.loads((fdir / 'detect.json').read_text())
    assert {k: detect[k] for k in params} == params

    # Files written without BN counters are detected the same way.
    no_counters = {k: v for k, v in sd.items() if not k.endswith('num_batches_tracked')}
    assert hrnet_params_from_fbrs_state_dict(no_counters) == params


def test_detection_small_variant(reference_dir, reference_weights):
    # RITM's HRNet18-small shares the feature_extractor layout of an f-BRS W18-small model.
    schema = reference_weights.load_schema(str(reference_dir / 'ritm' / 'hrnet18s_cocolvis_itermask_3p'
                                               / 'schema.json'))
    sd = {k: torch.empty(shape) for k, shape, _ in schema}
    assert hrnet_params_from_fbrs_state_dict(sd) == {'width': 18, 'ocr_width': 48, 'small': True}


def test_detection_rejects_other_state_dicts():
    with pytest.raises(CheckpointError, match='not an f-BRS HRNet'):
        hrnet_params_from_fbrs_state_dict({'feature_extractor.backbone.conv1.weight': torch.zeros(64, 3, 7, 7)})


def test_fbrs_hrnet_reproduces_fixture(fbrs_hrnet):
    fdir, schema, sd = fbrs_hrnet
    model = FBRSHRNetModel(**hrnet_params_from_fbrs_state_dict(sd)).eval()
    assert list(model.state_dict().keys()) == [k for k, _, _ in schema]
    model.load_state_dict(sd, strict=True)
    assert model.with_prev_mask is False and model.with_aux_output is False

    io = np.load(fdir / 'io.npz')
    image = torch.from_numpy(io['image'])
    points2 = torch.from_numpy(io['points'])
    # RITM layout: same clicks with their order as 3rd column (positives #0, #2, #3, negative #1)
    order = torch.tensor([0., 2., 3., 1., -1., -1.]).reshape(1, 6, 1)
    points3 = torch.cat([points2, order], dim=2)
    with torch.no_grad():
        normalised, prev_mask = model.prepare_input(image)
        coord_features = model.get_coord_features(normalised, prev_mask, points2)
        out2 = model(image, points2)
        out3 = model(image, points3)

    assert prev_mask is None
    np.testing.assert_allclose(normalised.numpy(), io['model_input'], rtol=0, atol=1e-6)
    assert torch.equal(coord_features, torch.from_numpy(io['coord_features']))
    ref = io['instances']
    assert set(out2) == {'instances'}
    for out in (out2, out3):
        diff = np.abs(out['instances'].numpy() - ref).max()
        assert diff <= 1e-3 * np.abs(ref).max(), f'max abs diff {diff}'
    assert torch.equal(out2['instances'], out3['instances'])


def test_rgb_conv_order_is_fbrs():
    model = FBRSHRNetModel(width=18, ocr_width=48, small=True)
    kinds = [type(m).__name__ for m in model.rgb_conv]
    assert kinds == ['Conv2d', 'LeakyReLU', 'BatchNorm2d', 'Conv2d']
    assert model.rgb_conv[1].negative_slope == 0.2
    assert model.dist_maps.norm_radius == 260 and not model.dist_maps.use_disks
    assert model.maps_transform is None and model.coord_feature_ch == 2


def test_config_round_trip_and_aux_output():
    torch.manual_seed(0)
    model = FBRSHRNetModel(width=18, ocr_width=48, small=True, with_aux_output=True).eval()
    config = model._config
    assert config['class'] == 'isegm.model.fbrs_models.FBRSHRNetModel'
    rebuilt = build_from_config(config, {config['class']: FBRSHRNetModel}).eval()
    rebuilt.load_state_dict(model.state_dict(), strict=True)
    assert rebuilt.with_aux_output and rebuilt.feature_extractor.small

    x = torch.rand(1, 3, 48, 64)
    points = torch.tensor([[[20., 30.], [-1., -1.]]])
    with torch.no_grad():
        a, b = model(x, points), rebuilt(x, points)
    assert set(a) == {'instances', 'instances_aux'}
    assert a['instances_aux'].shape == (1, 1, 48, 64)
    assert torch.equal(a['instances'], b['instances'])
