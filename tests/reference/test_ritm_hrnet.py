"""RITM HRNet+OCR models reproduce the reference fixtures (keys, config, click maps, logits)."""
import json

import numpy as np
import pytest
import torch

from isegm.errors import CheckpointError
from isegm.model.is_hrnet_model import HRNetModel
from isegm.model.modeling.hrnet_ocr import HighResolutionNet
from isegm.utils.serialization import build_from_config

CLASS_TABLE = {'isegm.model.is_hrnet_model.HRNetModel': HRNetModel}
FIXTURES = ['hrnet18_cocolvis_itermask_3p', 'hrnet18s_cocolvis_itermask_3p', 'hrnet32_cocolvis_itermask_3p',
            'hrnet18_ocr64_cocolvis']


def _model_input(io, with_prev_mask):
    x = torch.from_numpy(io['image'])
    if with_prev_mask:
        x = torch.cat([x, torch.from_numpy(io['prev_mask'])], dim=1)
    return x, torch.from_numpy(io['points'])


def _assert_close_to_ref(out: torch.Tensor, ref: np.ndarray, name: str):
    assert out.shape == ref.shape, name
    diff = np.abs(out.numpy() - ref).max()
    assert diff <= 1e-3 * np.abs(ref).max(), f'{name}: max abs diff {diff}, max |ref| {np.abs(ref).max()}'


@pytest.mark.parametrize('name', FIXTURES)
def test_hrnet_reproduces_ritm_fixture(name, reference_dir, reference_weights):
    fdir = reference_dir / 'ritm' / name
    config = json.loads((fdir / 'config.json').read_text())
    schema = reference_weights.load_schema(str(fdir / 'schema.json'))

    model = build_from_config(config, CLASS_TABLE).eval()
    sd = model.state_dict()
    assert list(sd.keys()) == [k for k, _, _ in schema]
    assert [tuple(v.shape) for v in sd.values()] == [tuple(s) for _, s, _ in schema]
    model.load_state_dict(reference_weights.reference_state_dict(schema), strict=True)

    # the config the model records is the one RITM wrote (JSON turns the mean/std tuple into lists)
    assert json.loads(json.dumps(model._config)) == config

    io = np.load(fdir / 'io.npz')
    x, points = _model_input(io, model.with_prev_mask)
    with torch.no_grad():
        image, prev_mask = model.prepare_input(x)
        coord_features = model.get_coord_features(image, prev_mask, points)
        out = model(x, points)
    assert torch.equal(coord_features, torch.from_numpy(io['coord_features']))
    _assert_close_to_ref(out['instances'], io['instances'], 'instances')
    _assert_close_to_ref(out['instances_aux'], io['instances_aux'], 'instances_aux')


def test_real_format_checkpoint_loads_and_reproduces(reference_dir):
    fdir = reference_dir / 'ritm' / 'hrnet18s_cocolvis_itermask_3p'
    ckpt = torch.load(fdir / 'checkpoint.pth', map_location='cpu', weights_only=True)
    model = build_from_config(ckpt['config'], CLASS_TABLE).eval()
    model.load_state_dict(ckpt['state_dict'], strict=True)
    assert model._config == ckpt['config']  # tuple of norm_mean_std included

    io = np.load(fdir / 'io.npz')
    with torch.no_grad():
        out = model(*_model_input(io, True))
    _assert_close_to_ref(out['instances'], io['instances'], 'instances')


def test_wrong_click_input_changes_logits(reference_dir, reference_weights):
    """Guard against a model that ignores its click features (the fixture check would still catch
    most errors, this makes the dependency explicit)."""
    fdir = reference_dir / 'ritm' / 'hrnet18s_cocolvis_itermask_3p'
    model = build_from_config(json.loads((fdir / 'config.json').read_text()), CLASS_TABLE).eval()
    model.load_state_dict(reference_weights.reference_state_dict(
        reference_weights.load_schema(str(fdir / 'schema.json'))))
    io = np.load(fdir / 'io.npz')
    x, points = _model_input(io, True)
    with torch.no_grad():
        a = model(x, points)['instances']
        b = model(x, torch.full_like(points, -1))['instances']
    assert (a - b).abs().max() > 1e-2


@pytest.mark.parametrize('width,ocr_width,small', [(18, 48, True), (48, 0, False)])
def test_variants_shapes_and_lr_mult(width, ocr_width, small):
    torch.manual_seed(0)
    model = HRNetModel(width=width, ocr_width=ocr_width, small=small, with_aux_output=ocr_width > 0,
                       use_leaky_relu=True, use_rgb_conv=False, use_disks=True, norm_radius=5,
                       with_prev_mask=True).eval()
    fe = model.feature_extractor
    assert fe.last_inp_channels == 15 * width
    assert len(fe.layer1) == (2 if small else 4)
    assert (len(fe.stage3), len(fe.stage4)) == ((3, 2) if small else (4, 3))
    assert fe.conv1.weight.lr_mult == pytest.approx(0.1)
    if ocr_width > 0:
        assert fe.conv3x3_ocr[0].weight.lr_mult == 1.0
        assert fe.ocr_distri_head.conv_bn_dropout[0].weight.lr_mult == 1.0

    x = torch.rand(1, 4, 64, 96)
    points = torch.tensor([[[30., 40., 0.], [-1., -1., -1.]]])
    with torch.no_grad():
        low = model.backbone_forward(*_encode(model, x, points))
        out = model(x, points)
    assert low['instances'].shape == (1, 1, 16, 24)  # stride 4
    assert out['instances'].shape == (1, 1, 64, 96)
    assert (low['instances_aux'] is None) == (ocr_width == 0)


def _encode(model, x, points):
    image, prev_mask = model.prepare_input(x)
    return image, model.maps_transform(model.get_coord_features(image, prev_mask, points))


def test_gradients_flow_to_input_features():
    """BRS optimises inputs / intermediate features: autograd must work through the whole network."""
    torch.manual_seed(0)
    model = HRNetModel(width=18, ocr_width=48, small=True, use_rgb_conv=False, use_disks=True,
                       norm_radius=5, with_aux_output=True).eval()
    x = torch.rand(1, 3, 64, 64)
    points = torch.tensor([[[30., 20., 0.], [-1., -1., -1.]]])
    image, _ = model.prepare_input(x)
    feats = model.maps_transform(model.get_coord_features(image, None, points))
    bias = torch.zeros_like(feats, requires_grad=True)
    model.backbone_forward(image, feats + bias)['instances'].sum().backward()
    assert bias.grad is not None and bias.grad.abs().sum() > 0


def test_load_pretrained_weights(tmp_path):
    torch.manual_seed(0)
    source = HighResolutionNet(width=18, num_classes=1, ocr_width=48, small=True)
    imagenet = {'model.' + k: v.clone() for k, v in source.state_dict().items()
                if not k.startswith(('conv3x3_ocr', 'ocr_', 'cls_head', 'aux_head'))}
    imagenet['classifier.weight'] = torch.zeros(1000, 2048)           # not in the model: skipped
    imagenet['last_layer.0.weight'] = torch.zeros(1000, 270, 1, 1)    # -> aux_head.0, wrong shape: skipped
    path = tmp_path / 'hrnet_w18_small_v2.pth'
    torch.save(imagenet, path)

    torch.manual_seed(1)
    model = HRNetModel(width=18, ocr_width=48, small=True)
    before_aux = model.feature_extractor.aux_head[0].weight.clone()
    n = model.load_pretrained_weights(str(path))
    assert n == len(imagenet) - 2
    fe = model.feature_extractor
    assert torch.equal(fe.stage4[1].branches[3][1].conv2.weight, source.stage4[1].branches[3][1].conv2.weight)
    assert torch.equal(fe.bn1.running_var, source.bn1.running_var)
    assert torch.equal(fe.aux_head[0].weight, before_aux)

    with pytest.raises(CheckpointError, match='not found'):
        model.load_pretrained_weights(str(tmp_path / 'missing.pth'))
