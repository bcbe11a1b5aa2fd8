"""The fast inference path (BN folded, channels_last) agrees with the plain path and the reference fixtures."""
import json

import numpy as np
import pytest
import torch
from torch import nn

from isegm.model.checkpoint import load_model, save_checkpoint
from isegm.model.fast_inference import _onednn_fusion_available, fold_batch_norms, fuse_conv_relu
from isegm.model.fbrs_models import (FBRSDeeplabModel, FBRSHRNetModel, deeplab_params_from_fbrs_state_dict,
                                     hrnet_params_from_fbrs_state_dict)
from isegm.model.is_deeplab_model import DeeplabModel
from isegm.model.is_hrnet_model import HRNetModel
from isegm.utils.serialization import build_from_config

CLASS_TABLE = {'isegm.model.is_hrnet_model.HRNetModel': HRNetModel,
               'isegm.model.is_deeplab_model.DeeplabModel': DeeplabModel}


def _ritm_model(reference_dir, reference_weights, name):
    fdir = reference_dir / 'ritm' / name
    model = build_from_config(json.loads((fdir / 'config.json').read_text()), CLASS_TABLE).eval()
    model.load_state_dict(reference_weights.reference_state_dict(
        reference_weights.load_schema(str(fdir / 'schema.json'))))
    io = np.load(fdir / 'io.npz')
    x = torch.from_numpy(io['image'])
    if model.with_prev_mask:
        x = torch.cat([x, torch.from_numpy(io['prev_mask'])], dim=1)
    return model, x, torch.from_numpy(io['points']), io


def _fbrs_model(reference_dir, reference_weights, name):
    fdir = reference_dir / 'fbrs' / name
    sd = reference_weights.reference_state_dict(reference_weights.load_schema(str(fdir / 'schema.json')))
    if 'hrnet' in name:
        model = FBRSHRNetModel(**hrnet_params_from_fbrs_state_dict(sd))
    else:
        model = FBRSDeeplabModel(**deeplab_params_from_fbrs_state_dict(sd))
    model.load_state_dict(sd)
    model.eval()
    io = np.load(fdir / 'io.npz')
    return model, torch.from_numpy(io['image']), torch.from_numpy(io['points']), io


CASES = [('ritm', 'hrnet18_cocolvis_itermask_3p'), ('ritm', 'r34_dh128_cocolvis'),
         ('fbrs', 'hrnet18_ocr64_sbd'), ('fbrs', 'resnet34_dh128_sbd')]


@pytest.mark.parametrize('family,name', CASES)
def test_fast_path_matches_plain_path_and_fixture(family, name, reference_dir, reference_weights):
    build = _ritm_model if family == 'ritm' else _fbrs_model
    model, x, points, io = build(reference_dir, reference_weights, name)
    keys_before = list(model.state_dict().keys())
    with torch.no_grad():
        plain = model(x, points)
        model.set_fast_inference(True)
        fast = model(x, points)
    assert model.fast_inference
    assert model.fast_model() is not model
    # the fast copy really is folded: fewer BatchNorm2d modules than the plain model
    count_bn = lambda m: sum(isinstance(mm, nn.BatchNorm2d) for mm in m.modules())  # noqa: E731
    assert count_bn(model.fast_model()) < count_bn(model) / 2
    # residual blocks run as fused oneDNN conv (+ add) + ReLU where available
    if _onednn_fusion_available():
        assert sum('forward' in vars(m) for m in model.fast_model().modules()) > 0
    # the plain model, its keys and its outputs are untouched
    assert list(model.state_dict().keys()) == keys_before
    assert count_bn(model) > 0

    for key in [k for k in ('instances', 'instances_aux') if k in io.files]:
        ref = io[key]
        tol = 1e-3 * np.abs(ref).max()
        assert np.abs(plain[key].numpy() - ref).max() <= tol
        diff = np.abs(fast[key].numpy() - ref).max()
        assert diff <= tol, f'{name} {key}: fast path off the fixture by {diff} (tolerance {tol})'
        assert np.abs(fast[key].numpy() - plain[key].numpy()).max() <= tol
        assert fast[key].is_contiguous()
    # rounding differs (different kernels), so the fast path did run
    assert not torch.equal(fast['instances'], plain['instances'])


def test_fast_path_only_without_autograd_and_in_eval(reference_dir, reference_weights):
    model, x, points, _ = _ritm_model(reference_dir, reference_weights, 'hrnet18s_cocolvis_itermask_3p')
    x, points = x[:, :, :96, :128], points.clone()
    points[points[..., 0] >= 96] = -1
    points[points[..., 1] >= 128] = -1
    with torch.no_grad():
        plain = model(x, points)['instances']
    model.set_fast_inference(True)
    with torch.no_grad():
        fast = model(x, points)['instances']
    assert not torch.equal(plain, fast)
    # gradients requested (BRS): the plain modules run, bit-exact
    with torch.enable_grad():
        assert torch.equal(model(x, points)['instances'].detach(), plain)
    # train mode: plain modules (and the cached copy is dropped)
    model.train()
    assert model.__dict__['_fast_inference_state']['model'] is None
    model.eval()
    with torch.no_grad():
        assert torch.allclose(model(x, points)['instances'], fast, atol=0, rtol=0)
        model.set_fast_inference(False)
        assert torch.equal(model(x, points)['instances'], plain)


def test_load_state_dict_rebuilds_fast_copy(reference_dir, reference_weights):
    model, x, points, _ = _ritm_model(reference_dir, reference_weights, 'hrnet18s_cocolvis_itermask_3p')
    x = x[:, :, :64, :96]
    points = torch.tensor([[[20., 30., 0.], [-1., -1., -1.]]])
    model.set_fast_inference(True)
    with torch.no_grad():
        before = model(x, points)['instances']
        sd = {k: (v * 0.9 if k.endswith('running_var') else v) for k, v in model.state_dict().items()}
        model.load_state_dict(sd)
        after_fast = model(x, points)['instances']
        model.set_fast_inference(False)
        after_plain = model(x, points)['instances']
    assert not torch.allclose(before, after_fast, atol=1e-3)
    assert torch.allclose(after_fast, after_plain, atol=1e-3 * after_plain.abs().max().item())


def test_checkpoint_saves_reference_layout(tmp_path, reference_dir):
    src = reference_dir / 'ritm' / 'hrnet18s_cocolvis_itermask_3p' / 'checkpoint.pth'
    model = load_model(src)
    assert model.fast_inference   # on by default for inference
    io = np.load(reference_dir / 'ritm' / 'hrnet18s_cocolvis_itermask_3p' / 'io.npz')
    x = torch.cat([torch.from_numpy(io['image']), torch.from_numpy(io['prev_mask'])], dim=1)
    with torch.no_grad():
        out = model(x, torch.from_numpy(io['points']))['instances'].numpy()
    assert np.abs(out - io['instances']).max() <= 1e-3 * np.abs(io['instances']).max()

    save_checkpoint(model, tmp_path / 'copy.pth')
    saved = torch.load(tmp_path / 'copy.pth', weights_only=True)['state_dict']
    original = torch.load(src, weights_only=True)['state_dict']
    assert list(saved.keys()) == list(original.keys())
    assert all(torch.equal(saved[k], original[k]) for k in original)
    assert not load_model(src, fast_inference=False).fast_inference


def test_fold_batch_norms_finds_only_adjacent_pairs():
    """BN after an activation (f-BRS rgb_conv order) is not folded; BN right after a conv is."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                        nn.Conv2d(4, 4, 1), nn.LeakyReLU(0.2), nn.BatchNorm2d(4), nn.Conv2d(4, 2, 1)).eval()
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.5, 2)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.5, 0.5)
    x = torch.randn(2, 3, 16, 16)
    folded, num = fold_batch_norms(net, lambda m: m(x))
    assert num == 1
    assert isinstance(folded[1], nn.Identity) and isinstance(folded[5], nn.BatchNorm2d)
    assert isinstance(net[1], nn.BatchNorm2d)   # original untouched
    with torch.no_grad():
        torch.testing.assert_close(folded(x), net(x), rtol=1e-5, atol=1e-5)


def test_predictor_output_same_with_fast_path(reference_dir, datasets_dir):
    """NoBRS predictor (ZoomIn + flip, ITER-M previous mask) gives the same probabilities both ways."""
    from isegm.data.datasets.eval_sets import GrabCutDataset
    from isegm.inference.clicker import Clicker
    from isegm.inference.predictors import get_predictor

    dataset = GrabCutDataset(datasets_dir / 'GrabCut')
    sample = next(dataset.get_sample(i) for i in range(len(dataset)) if dataset.items[i][2] == '124080')
    src = reference_dir / 'ritm' / 'hrnet18s_cocolvis_itermask_3p' / 'checkpoint.pth'
    runs = {}
    for fast in (False, True):
        model = load_model(src, fast_inference=fast)
        predictor = get_predictor(model, 'NoBRS', 'cpu', zoom_in_params={'target_size': 200, 'min_crop_size': 100})
        predictor.set_input_image(sample.image)
        clicker = Clicker(gt_mask=sample.gt_mask)
        pred, probs = np.zeros(sample.gt_mask.shape, bool), []
        for _ in range(3):
            clicker.make_next_click(pred)
            prob = predictor.get_prediction(clicker)
            probs.append(prob.copy())
            pred = prob > 0.49
        runs[fast] = (probs, [c.coords for c in clicker.get_clicks()], predictor.zoom_in.object_roi)
    (plain, plain_clicks, plain_roi), (fast, fast_clicks, fast_roi) = runs[False], runs[True]
    assert plain_clicks == fast_clicks and plain_roi == fast_roi and plain_roi is not None
    for k, (a, b) in enumerate(zip(plain, fast)):
        diff = np.abs(a - b).max()
        assert diff <= 1e-3, f'click {k + 1}: probabilities differ by {diff}'
        assert ((a > 0.49) != (b > 0.49)).mean() < 1e-4
    assert max(np.abs(a - b).max() for a, b in zip(plain, fast)) > 0   # the fast path did run


def test_fuse_conv_relu_on_sequential_and_blocks():
    """conv -> ReLU chains and residual blocks give the same values fused as unfused."""
    from isegm.model.modeling.hrnet_ocr import BasicBlock, Bottleneck
    if not _onednn_fusion_available():
        pytest.skip('oneDNN fused convolutions are not available in this torch build')
    torch.manual_seed(0)
    down = nn.Sequential(nn.Conv2d(8, 16, 1, bias=False), nn.Identity())
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.Identity(), nn.ReLU(),
                        BasicBlock(8, 8), Bottleneck(8, 4, downsample=down)).eval()
    for block in (net[3], net[4]):
        for name in ('bn1', 'bn2', 'bn3'):
            if hasattr(block, name):
                setattr(block, name, nn.Identity())
    net = net.to(memory_format=torch.channels_last)
    x = torch.randn(2, 3, 20, 24).contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        ref = net(x)
        import copy
        fused = copy.deepcopy(net)
        assert fuse_conv_relu(fused) == 3
        torch.testing.assert_close(fused(x), ref, rtol=1e-5, atol=1e-5)
    # with autograd on (BRS) the fused copy falls back to differentiable ops with the same gradients
    x.requires_grad_(True)
    fused(x).sum().backward()
    grad = x.grad.clone()
    x.grad = None
    net(x).sum().backward()
    torch.testing.assert_close(grad, x.grad, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize('size', [(64, 64), (61, 75), (40, 97)])
def test_efficientnet_fusion_matches_plain(size):
    """EfficientNet-Lite (compact models): stem and MBConv blocks run fused (ReLU6 and skip add as
    oneDNN post-ops, TF "same" padding on even and odd sizes) and agree with the plain modules."""
    from isegm.model.is_compact_model import CompactClickModel
    from isegm.model.modeling.efficientnet_lite import MBConvBlock
    if not _onednn_fusion_available():
        pytest.skip('oneDNN fused convolutions are not available in this torch build')
    torch.manual_seed(0)
    model = CompactClickModel(backbone='lite0', decoder_ch=32, use_disks=True, norm_radius=5,
                              with_prev_mask=True, with_aux_output=True)
    for m in model.modules():   # non-trivial BN statistics, so that folding matters
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)
    model.eval()
    x = torch.rand(2, 4, *size)
    x[:, 3] = (x[:, 3] > 0.5).float()
    points = torch.tensor([[[10.0, 12.0, 0.0], [-1.0, -1.0, -1.0]], [[30.0, 20.0, 0.0], [5.0, 5.0, 1.0]]])
    with torch.no_grad():
        ref = model(x, points)['instances']
        model.set_fast_inference(True)
        fast = model(x, points)['instances']
    fused = [m for m in model.fast_model().modules() if isinstance(m, MBConvBlock) and 'forward' in m.__dict__]
    assert len(fused) == sum(isinstance(m, MBConvBlock) for m in model.modules()) == 16
    assert 'stem' in model.fast_model().feature_extractor.__dict__
    # the click features enter through a sum post-op, the FPN lateral adds are post-ops too
    assert 'merge_clicks' in model.fast_model().__dict__
    assert 'merge_lateral' in model.fast_model().decoder.__dict__
    tol = 1e-4 * float(ref.abs().max())
    assert float((fast - ref).abs().max()) <= tol
    assert not torch.equal(fast, ref)   # the folded copy did run


def test_compact_extreme_model_fast_path_matches_plain():
    """The extreme-point model (forward(x) -> logits) has the same fast path as the click models."""
    from isegm.model.is_compact_model import CompactExtremeModel
    torch.manual_seed(0)
    model = CompactExtremeModel(backbone='lite0', decoder_ch=32, input_size=96)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    model.eval()
    x = torch.rand(2, 4, 96, 96) * 255
    with torch.no_grad():
        ref = model(x)
        model.set_fast_inference(True)
        fast = model(x)
    assert fast.shape == ref.shape == (2, 1, 96, 96)
    assert float((fast - ref).abs().max()) <= 1e-4 * float(ref.abs().max())
    assert not torch.equal(fast, ref)


@pytest.mark.parametrize('kernel,stride', [(3, 2), (5, 2), (3, 1), (5, 1)])
def test_same_convolution_without_explicit_pad(kernel, stride):
    """TF "same" padding as a convolution argument: asymmetric cases (stride 2 on even sizes) use a kernel
    with a leading row / column of zero taps instead of a padded copy; the result is the same bit for bit
    as SameConv2d's explicit pad (the extra taps add exact zeros)."""
    from isegm.model.fast_inference import _same_conv_args
    from isegm.model.modeling.efficientnet_lite import SameConv2d
    torch.manual_seed(kernel * 10 + stride)
    conv = SameConv2d(6, 6, kernel, stride=stride, groups=6, bias=False).eval()
    conv = conv.to(memory_format=torch.channels_last)
    for h, w in [(20, 30), (21, 30), (20, 31), (17, 23), (2, 3)]:
        x = torch.randn(2, 6, h, w).contiguous(memory_format=torch.channels_last)
        with torch.no_grad():
            ref = conv(x)
            weight, padding = _same_conv_args(conv, x)
            out = torch.nn.functional.conv2d(x, weight, None, conv.stride, padding, 1, conv.groups)
        assert out.shape == ref.shape
        assert torch.equal(out, ref), (h, w)
        asymmetric = stride == 2 and (h % 2 == 0 or w % 2 == 0)
        assert (weight.shape[-2:] != conv.weight.shape[-2:]) == asymmetric


def test_click_branch_scale_folded_and_leaky_relu_fused():
    """RITM's click-map branch (conv 1x1 -> LeakyReLU -> conv 3x3 -> ScaleLayer): the scale is folded into
    the 3x3 convolution and the LeakyReLU runs as a post-op of the 1x1 one; same values."""
    from isegm.model.fast_inference import _ConvAct
    from isegm.model.ops import ScaleLayer
    if not _onednn_fusion_available():
        pytest.skip('oneDNN fused convolutions are not available in this torch build')
    torch.manual_seed(0)
    model = HRNetModel(width=8, ocr_width=8, small=True, with_prev_mask=True, use_disks=True, norm_radius=5,
                       use_leaky_relu=True, use_rgb_conv=False).eval()
    model.maps_transform[-1].scale.data.fill_(-0.37)   # |scale| is what the layer applies
    x = torch.rand(1, 4, 48, 64)
    points = torch.tensor([[[10.0, 12.0, 0.0], [30.0, 40.0, 1.0]]])
    with torch.no_grad():
        ref = model(x, points)['instances']
        coord = model.get_coord_features(x[:, :3], x[:, 3:], points)
        model.set_fast_inference(True)
        fast = model(x, points)['instances']
    branch = model.fast_model().maps_transform
    assert not any(isinstance(m, ScaleLayer) for m in branch.modules())
    assert isinstance(branch[0], _ConvAct) and branch[0].attr == 'leaky_relu' and branch[0].scalars == [0.2]
    assert float((fast - ref).abs().max()) <= 1e-4 * float(ref.abs().max())
    with torch.no_grad():
        folded = branch(coord.contiguous(memory_format=torch.channels_last))
        plain = model.maps_transform(coord)
    assert float(plain.abs().max()) > 0
    torch.testing.assert_close(folded, plain, rtol=1e-5, atol=1e-6)
    # with autograd on (BRS) the fused LeakyReLU falls back to differentiable ops with the same gradients
    grads = []
    for module in (branch, model.maps_transform):
        inp = coord.clone().requires_grad_(True)
        module(inp).square().sum().backward()
        grads.append(inp.grad)
    assert float(grads[1].abs().max()) > 0
    torch.testing.assert_close(grads[0], grads[1], rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize('size', [(64, 64), (61, 75), (37, 50)])
def test_compact_click_encoder_composed_into_its_consumers(size):
    """The compact click model's click encoder ends in a 3x3 stride-2 convolution to 64 channels whose only
    consumers are two 1x1 convolutions (one after a 2x2 average pool): the fast copy composes them, so that
    map is never made, with the same values (odd sizes: the ceil-mode pool's partial windows), also with
    autograd on (the input BRS modes run the fast copy under autograd)."""
    from isegm.model.is_compact_model import CompactClickModel
    from isegm.model.ops import ScaleLayer
    torch.manual_seed(1)
    model = CompactClickModel(backbone='lite0', decoder_ch=32, use_disks=True, norm_radius=5,
                              with_prev_mask=True).eval()
    scale = [m for m in model.maps_transform.modules() if isinstance(m, ScaleLayer)][0]
    scale.scale.data.fill_(0.3)
    model.coord_skip.bias.data.uniform_(-0.5, 0.5)
    x = torch.rand(2, 4, *size)
    x[:, 3] = (x[:, 3] > 0.5).float()
    points = torch.tensor([[[10.0, 12.0, 0.0], [-1.0, -1.0, -1.0]], [[30.0, 20.0, 0.0], [5.0, 5.0, 1.0]]])
    with torch.no_grad():
        ref = model(x, points)['instances']
        coord = model.get_coord_features(x[:, :3], x[:, 3:], points)
        model.set_fast_inference(True)
        fast_out = model(x, points)['instances']
    fast = model.fast_model()
    # the 64-channel convolution is gone; the consumers are 3x3 stride-2 convolutions on the 16 channels
    assert not any(isinstance(m, nn.Conv2d) and m.out_channels == 64 for m in fast.maps_transform.modules())
    for conv, out_channels in ((fast.coord_proj, 32), (fast.coord_skip, 16)):
        assert (conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride) == (16, out_channels,
                                                                                        (3, 3), (2, 2))
    assert float((fast_out - ref).abs().max()) <= 1e-4 * float(ref.abs().max())
    stem = torch.rand(2, 32, (size[0] + 1) // 2, (size[1] + 1) // 2)
    for grad in (False, True):
        with torch.set_grad_enabled(grad):
            inp = coord.clone().requires_grad_(grad)
            encoded = model.maps_transform(inp)
            plain = (model.coord_proj(encoded) + stem, model.click_skip(encoded))
            inp_fast = coord.clone().contiguous(memory_format=torch.channels_last).requires_grad_(grad)
            z = fast.maps_transform(inp_fast)
            composed = (fast.merge_clicks(fast.coord_proj, z, stem.contiguous(memory_format=torch.channels_last)),
                        fast.click_skip(z))
        for a, b in zip(plain, composed):
            a, b = a.detach(), b.detach()
            assert a.shape == b.shape and float(a.abs().max()) > 0
            torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-5 * float(a.abs().max()))
        if grad:
            sum(t.square().sum() for t in plain).backward()
            sum(t.square().sum() for t in composed).backward()
            assert float(inp.grad.abs().max()) > 0
            torch.testing.assert_close(inp_fast.grad, inp.grad, rtol=1e-4, atol=1e-5 * float(inp.grad.abs().max()))


def test_click_encoder_left_alone_without_its_two_consumers():
    """RITM's HRNet click branch feeds the stem directly: nothing to compose there."""
    from isegm.model.fast_inference import compose_click_encoder
    model = HRNetModel(width=8, ocr_width=8, small=True, with_prev_mask=True, use_disks=True, norm_radius=5,
                       use_rgb_conv=False).eval()
    before = [type(m) for m in model.maps_transform]
    assert compose_click_encoder(model) == 0
    assert [type(m) for m in model.maps_transform] == before
