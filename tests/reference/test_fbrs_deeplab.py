"""f-BRS DeepLabV3+ models: official key layout, fixture outputs, and the reference loader's detection rules."""
import json

import numpy as np
import pytest
import torch

from isegm.errors import CheckpointError
from isegm.model.fbrs_models import FBRSDeeplabModel, deeplab_params_from_fbrs_state_dict
from isegm.utils.serialization import build_from_config

FIXTURE = 'resnet34_dh128_sbd'


def _assert_close_to_ref(out: torch.Tensor, ref: np.ndarray, name: str):
    assert out.shape == ref.shape, name
    diff = np.abs(out.numpy() - ref).max()
    assert diff <= 1e-3 * np.abs(ref).max(), f'{name}: max abs diff {diff}, max |ref| {np.abs(ref).max()}'


@pytest.fixture(scope='module')
def fixture_sd(reference_dir, reference_weights):
    fdir = reference_dir / 'fbrs' / FIXTURE
    schema = reference_weights.load_schema(str(fdir / 'schema.json'))
    return schema, reference_weights.reference_state_dict(schema)


@pytest.fixture(scope='module')
def r34(fixture_sd):
    schema, sd = fixture_sd
    model = FBRSDeeplabModel(**deeplab_params_from_fbrs_state_dict(sd)).eval()
    return model


def test_detection_on_fixture_schema(fixture_sd, reference_dir):
    detect = json.loads((reference_dir / 'fbrs' / FIXTURE / 'detect.json').read_text())
    params = deeplab_params_from_fbrs_state_dict(fixture_sd[1])
    assert params == {'backbone': 'resnet34', 'deeplab_ch': 128, 'aspp_dropout': 0.2}
    assert (params['backbone'], params['deeplab_ch'], [params['aspp_dropout']]) == \
        (detect['backbone'], detect['deeplab_ch'], detect['aspp_dropout'])


def test_fbrs_deeplab_reproduces_fixture(r34, fixture_sd, reference_dir):
    schema, ref_sd = fixture_sd
    model = r34
    sd = model.state_dict()
    assert len(sd) == 299
    assert list(sd.keys()) == [k for k, _, _ in schema]
    assert [tuple(v.shape) for v in sd.values()] == [tuple(s) for _, s, _ in schema]
    model.load_state_dict(ref_sd, strict=True)

    io = np.load(reference_dir / 'fbrs' / FIXTURE / 'io.npz')
    x, points = torch.from_numpy(io['image']), torch.from_numpy(io['points'])
    with torch.no_grad():
        image, prev_mask = model.prepare_input(x)
        coord_features = model.get_coord_features(image, prev_mask, points)
        out = model(x, points)
    assert prev_mask is None
    np.testing.assert_allclose(image.numpy(), io['model_input'], rtol=0, atol=1e-6)
    assert torch.equal(coord_features, torch.from_numpy(io['coord_features']))
    assert set(out) == {'instances'}
    _assert_close_to_ref(out['instances'], io['instances'], 'instances')

    # RITM's 3-column points (with click order) give the same clicks
    order = torch.tensor([[[0.], [2.], [3.], [1.], [-1.], [-1.]]])
    with torch.no_grad():
        coord3 = model.get_coord_features(image, None, torch.cat([points, order], dim=2))
    assert torch.equal(coord3, coord_features)


def test_surface_for_predictors(r34):
    model = r34
    assert model.with_prev_mask is False and model.with_aux_output is False and model.maps_transform is None
    assert [type(m).__name__ for m in model.rgb_conv] == ['Conv2d', 'LeakyReLU', 'BatchNorm2d', 'Conv2d']
    assert model.rgb_conv[1].negative_slope == 0.2
    assert model.dist_maps.norm_radius == 260 and model.dist_maps.use_disks is False
    fe = model.feature_extractor
    assert (fe.ch, fe.aspp_in_channels) == (128, 512)
    for part in (fe.backbone, fe.skip_project, fe.aspp, fe.head, model.head):
        assert isinstance(part, torch.nn.Module)


def test_config_roundtrip(r34):
    config = json.loads(json.dumps(r34._config))
    assert config['class'] == 'isegm.model.fbrs_models.FBRSDeeplabModel'
    assert {k: v['value'] for k, v in config['params'].items() if v['specified']} == \
        {'backbone': 'resnet34', 'deeplab_ch': 128, 'aspp_dropout': 0.2}
    rebuilt = build_from_config(config, {config['class']: FBRSDeeplabModel})
    assert [(k, v.shape) for k, v in rebuilt.state_dict().items()] == \
        [(k, v.shape) for k, v in r34.state_dict().items()]


@pytest.mark.parametrize('backbone, deeplab_ch, dropout', [('resnet50', 128, 0.2), ('resnet101', 256, 0.5)])
def test_detection_on_larger_backbones(backbone, deeplab_ch, dropout):
    model = FBRSDeeplabModel(backbone=backbone, deeplab_ch=deeplab_ch, aspp_dropout=dropout)
    sd = model.state_dict()
    assert deeplab_params_from_fbrs_state_dict(sd) == \
        {'backbone': backbone, 'deeplab_ch': deeplab_ch, 'aspp_dropout': dropout}
    # checkpoints from old PyTorch have no counters: detection does not count them anyway
    no_counters = {k: v for k, v in sd.items() if not k.endswith('num_batches_tracked')}
    assert deeplab_params_from_fbrs_state_dict(no_counters)['backbone'] == backbone


def test_detection_with_top_level_aspp_dropout(fixture_sd):
    sd = dict(fixture_sd[1])
    sd['aspp_dropout'] = torch.tensor(0.35)
    params = deeplab_params_from_fbrs_state_dict(sd)
    assert params['backbone'] == 'resnet34' and params['deeplab_ch'] == 128
    assert params['aspp_dropout'] == pytest.approx(0.35)

    wide = dict(fixture_sd[1])
    wide['feature_extractor.aspp.project.0.weight'] = torch.zeros(256, 1280, 1, 1)
    assert deeplab_params_from_fbrs_state_dict(wide)['deeplab_ch'] == 256
    assert deeplab_params_from_fbrs_state_dict(wide)['aspp_dropout'] == 0.5
    wide['aspp_dropout'] = torch.tensor([0.1])  # the reference then keeps deeplab_ch at 128
    assert deeplab_params_from_fbrs_state_dict(wide)['deeplab_ch'] == 128


def test_detection_rejects_other_state_dicts(fixture_sd):
    with pytest.raises(CheckpointError, match='not an f-BRS DeepLab'):
        deeplab_params_from_fbrs_state_dict({'conv1.weight': torch.zeros(1)})
    too_many = dict(fixture_sd[1])
    too_many.update({f'feature_extractor.backbone.extra.{i}.weight': torch.zeros(1) for i in range(400)})
    with pytest.raises(CheckpointError, match='more than any'):
        deeplab_params_from_fbrs_state_dict(too_many)


def test_without_rgb_conv_uses_reference_fallback_fusion():
    torch.manual_seed(0)
    model = FBRSDeeplabModel(backbone='resnet34', deeplab_ch=32, aspp_dropout=0.2, use_rgb_conv=False).eval()
    assert model.rgb_conv is None and not any(k.startswith('rgb_conv') for k in model.state_dict())
    x = torch.rand(1, 3, 48, 64)
    image = model.prepare_input(x)[0]
    maps = torch.rand(1, 2, 48, 64)
    fused = model.fuse_clicks(image, maps)
    expected = torch.cat([0.8 * image[:, :2] * maps + 0.2 * image[:, :2], image[:, 2:]], dim=1)
    assert torch.allclose(fused, expected, atol=1e-6)
    with torch.no_grad():
        out = model(x, torch.tensor([[[10.0, 20.0], [-1.0, -1.0]]]))['instances']
    assert out.shape == (1, 1, 48, 64) and torch.isfinite(out).all()
