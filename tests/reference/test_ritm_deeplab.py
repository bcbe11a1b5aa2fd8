"""RITM DeepLabV3+ models reproduce the reference fixture (keys, config, click maps, logits); the
ResNet-50/101 variants have RITM's layout; ImageNet backbone weights load."""
import json

import numpy as np
import pytest
import torch

from isegm.errors import CheckpointError
from isegm.model.is_deeplab_model import DeeplabModel
from isegm.model.modeling.resnet import ResNetBackbone
from isegm.utils.serialization import build_from_config

CLASS_TABLE = {'isegm.model.is_deeplab_model.DeeplabModel': DeeplabModel}
FIXTURE = 'r34_dh128_cocolvis'


def _assert_close_to_ref(out: torch.Tensor, ref: np.ndarray, name: str):
    assert out.shape == ref.shape, name
    diff = np.abs(out.numpy() - ref).max()
    assert diff <= 1e-3 * np.abs(ref).max(), f'{name}: max abs diff {diff}, max |ref| {np.abs(ref).max()}'


def _num_backbone_keys(model) -> int:
    return sum(1 for k in model.state_dict()
               if 'feature_extractor.backbone' in k and 'num_batches_tracked' not in k)


@pytest.fixture(scope='module')
def r34(reference_dir, reference_weights):
    fdir = reference_dir / 'ritm' / FIXTURE
    config = json.loads((fdir / 'config.json').read_text())
    schema = reference_weights.load_schema(str(fdir / 'schema.json'))
    model = build_from_config(config, CLASS_TABLE).eval()
    return model, config, schema, np.load(fdir / 'io.npz')


def test_reference_weights_are_the_published_ones(r34, reference_dir, reference_weights):
    _, _, schema, _ = r34
    published = json.loads((reference_dir / 'weights_sha256.json').read_text())['models'][f'ritm/{FIXTURE}']
    sd = reference_weights.reference_state_dict(schema)
    assert reference_weights.state_dict_sha256(sd) == published['sha256']


def test_deeplab_reproduces_ritm_fixture(r34, reference_weights):
    model, config, schema, io = r34
    sd = model.state_dict()
    assert list(sd.keys()) == [k for k, _, _ in schema]
    assert [tuple(v.shape) for v in sd.values()] == [tuple(s) for _, s, _ in schema]
    model.load_state_dict(reference_weights.reference_state_dict(schema), strict=True)

    # the recorded config is RITM's, parameter order included (JSON turns the mean/std tuple into lists)
    recorded = json.loads(json.dumps(model._config))
    assert recorded == config
    assert list(recorded['params']) == list(config['params'])

    x, points = torch.from_numpy(io['image']), torch.from_numpy(io['points'])
    with torch.no_grad():
        image, prev_mask = model.prepare_input(x)
        coord_features = model.get_coord_features(image, prev_mask, points)
        out = model(x, points)
    assert torch.equal(coord_features, torch.from_numpy(io['coord_features']))
    assert set(out) == {'instances'}
    _assert_close_to_ref(out['instances'], io['instances'], 'instances')

    # the clicks matter: dropping the negative click changes the logits well beyond the tolerance
    no_neg = points.clone()
    no_neg[0, 3] = -1
    with torch.no_grad():
        changed = model(x, no_neg)['instances']
    assert np.abs(changed.numpy() - io['instances']).max() > 1e-2 * np.abs(io['instances']).max()


def test_stages_are_reachable_for_feature_brs(r34):
    """f-BRS-A/B/C run the network in parts; the parts must compose to the full forward pass."""
    model, _, _, io = r34
    x, points = torch.from_numpy(io['image'][:, :, :96, :128]), torch.from_numpy(io['points']).clone()
    points[0, 1:3] = -1  # keep the clicks inside the crop
    points[0, 3] = torch.tensor([60.0, 100.0, 1.0])
    fe = model.feature_extractor
    with torch.no_grad():
        image, prev_mask = model.prepare_input(x)
        add = model.maps_transform(model.get_coord_features(image, prev_mask, points))
        c1, _, _, c4 = fe.backbone(image, add)
        assert c4.shape[1] == fe.aspp_in_channels == 512 and c1.shape[1] == fe.skip_project_in_channels == 64
        head_in = fe.forward_from_aspp(c4, fe.skip_project(c1))
        assert head_in.shape[1] == fe.ch + 32
        logits = model.head(fe.head(head_in))
        full = model.backbone_forward(image, add)['instances']
    assert torch.allclose(logits, full, rtol=0, atol=1e-7)
    assert full.shape[2:] == (24, 32)  # output stride 4


def test_backbone_has_lr_mult(r34):
    model = r34[0]
    assert all(p.lr_mult == 0.1 for p in model.feature_extractor.backbone.parameters())
    assert not hasattr(next(model.head.parameters()), 'lr_mult')


@pytest.mark.parametrize('backbone, num_keys, limit', [('resnet34', 180, 181), ('resnet50', 275, 276),
                                                       ('resnet101', 530, 531)])
def test_resnet_variants_have_reference_layout(backbone, num_keys, limit):
    model = DeeplabModel(backbone=backbone, deeplab_ch=256, use_leaky_relu=True, use_rgb_conv=False,
                         use_disks=True, norm_radius=5)
    sd = model.state_dict()
    assert _num_backbone_keys(model) == num_keys <= limit
    if backbone == 'resnet34':
        assert tuple(sd['feature_extractor.backbone.conv1.weight'].shape) == (64, 3, 7, 7)
        assert tuple(sd['feature_extractor.skip_project.skip_project.0.weight'].shape) == (32, 64, 1, 1)
    else:  # V1s deep stem, bottlenecks with 4x expansion
        assert tuple(sd['feature_extractor.backbone.conv1.0.weight'].shape) == (64, 3, 3, 3)
        assert tuple(sd['feature_extractor.backbone.conv1.6.weight'].shape) == (128, 64, 3, 3)
        assert tuple(sd['feature_extractor.backbone.bn1.weight'].shape) == (128,)
        assert tuple(sd['feature_extractor.backbone.layer1.0.downsample.0.weight'].shape) == (256, 128, 1, 1)
        assert tuple(sd['feature_extractor.backbone.layer4.2.conv3.weight'].shape) == (2048, 512, 1, 1)
        assert tuple(sd['feature_extractor.aspp.concurent.0.0.weight'].shape) == (256, 2048, 1, 1)
        assert tuple(sd['feature_extractor.skip_project.skip_project.0.weight'].shape) == (32, 256, 1, 1)
    assert not any(k.startswith('feature_extractor.backbone.fc') for k in sd)
    assert tuple(sd['head.layers.2.weight'].shape) == (1, 128, 1, 1)


def test_resnet50_forward_pads_click_features_into_wide_stem():
    torch.manual_seed(0)
    model = DeeplabModel(backbone='resnet50', deeplab_ch=64, aspp_dropout=0.2).eval()
    x = torch.rand(1, 3, 64, 80)
    points = torch.tensor([[[20.0, 30.0, 0], [-1, -1, -1]]])
    with torch.no_grad():
        out = model(x, points)['instances']
        image, _ = model.prepare_input(x)
        c1, c2, c3, c4 = model.feature_extractor.backbone(image, torch.ones(1, 64, 32, 40))
        c1_plain = model.feature_extractor.backbone(image)[0]
    assert out.shape == (1, 1, 64, 80) and torch.isfinite(out).all()
    assert c1.shape == (1, 256, 16, 20) and c4.shape == (1, 2048, 8, 10)
    assert not torch.allclose(c1, c1_plain)


def test_load_pretrained_weights_from_file(tmp_path):
    torch.manual_seed(1)
    source = ResNetBackbone('resnet34')
    pretrained = {k: v for k, v in source.state_dict().items() if k.startswith(('conv1.', 'bn1.', 'layer1.'))}
    pretrained['fc.weight'] = torch.zeros(1000, 512)
    pretrained['fc.bias'] = torch.zeros(1000)
    path = tmp_path / 'gluon_resnet34_v1b.pth'
    torch.save(pretrained, path)

    model = DeeplabModel(backbone='resnet34', deeplab_ch=128)
    before = model.feature_extractor.backbone.layer2[0].conv1.weight.clone()
    skipped = model.load_pretrained_weights(path)
    assert sorted(skipped) == ['fc.bias', 'fc.weight']
    own = model.feature_extractor.backbone.state_dict()
    for k in ('conv1.weight', 'bn1.running_var', 'layer1.2.conv2.weight'):
        assert torch.equal(own[k], pretrained[k])
    assert torch.equal(model.feature_extractor.backbone.layer2[0].conv1.weight, before)


def test_load_pretrained_weights_errors(tmp_path):
    model = DeeplabModel(backbone='resnet34', deeplab_ch=128)
    with pytest.raises(CheckpointError, match='does not exist'):
        model.load_pretrained_weights(tmp_path / 'missing.pth')
    with pytest.raises(CheckpointError, match='do not fit'):
        model.load_pretrained_weights({'conv1.weight': torch.zeros(64, 3, 3, 3)})
    with pytest.raises(CheckpointError, match='do not fit'):
        model.load_pretrained_weights({'fc.weight': torch.zeros(1000, 512)})
