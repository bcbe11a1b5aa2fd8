"""DEXTR network and demo pipeline against ../shared/reference/dextr (README section 4)."""
import json

import cv2
import numpy as np
import pytest
import torch

from isegm.errors import CheckpointError
from isegm.inference.predictors.extreme import ExtremePointsPredictor
from isegm.model.is_dextr_model import DextrModel, dextr_state_dict_from_checkpoint
from isegm.utils.serialization import build_from_config


@pytest.fixture(scope='module')
def dextr_dir(reference_dir):
    return reference_dir / 'dextr'


@pytest.fixture(scope='module')
def schema(reference_weights, dextr_dir):
    return reference_weights.load_schema(str(dextr_dir / 'schema.json'))


@pytest.fixture(scope='module')
def reference_sd(reference_weights, schema):
    return reference_weights.reference_state_dict(schema)


@pytest.fixture(scope='module')
def model(reference_sd):
    net = DextrModel()
    net.load_state_dict(reference_sd, strict=True)
    return net.eval()


@pytest.fixture(scope='module')
def pipeline(dextr_dir):
    return dict(np.load(dextr_dir / 'pipeline.npz'))


def test_weights_checksum(reference_weights, reference_dir, reference_sd):
    sums = json.loads((reference_dir / 'weights_sha256.json').read_text())
    assert reference_weights.state_dict_sha256(reference_sd) == sums['models']['dextr']['sha256']


def test_state_dict_layout_matches_schema(schema):
    sd = DextrModel().state_dict()
    assert len(sd) == 656
    assert list(sd.keys()) == [key for key, _, _ in schema]
    for key, shape, dtype in schema:
        assert list(sd[key].shape) == list(shape), key
        assert str(sd[key].dtype) == f'torch.{dtype}', key


def test_forward_matches_reference_output(model, dextr_dir):
    io = np.load(dextr_dir / 'io.npz')
    with torch.inference_mode():
        out = model(torch.from_numpy(io['input'])).numpy()
    ref = io['output']
    assert out.shape == ref.shape == (1, 1, 64, 64)
    assert np.abs(out - ref).max() <= 1e-3 * np.abs(ref).max()


def test_fast_path_matches_reference_output(reference_sd, dextr_dir):
    """BN folded, channels_last, fused bottlenecks: still within the fixture tolerance."""
    from isegm.model.fast_inference import _onednn_fusion_available
    from isegm.model.modeling.dextr_resnet import DextrBottleneck
    net = DextrModel()
    net.load_state_dict(reference_sd, strict=True)
    net.eval().set_fast_inference(True)
    io = np.load(dextr_dir / 'io.npz')
    with torch.inference_mode():
        fast = net(torch.from_numpy(io['input'])).numpy()
    net.set_fast_inference(False)
    with torch.inference_mode():
        plain = net(torch.from_numpy(io['input'])).numpy()
    ref = io['output']
    assert np.abs(fast - ref).max() <= 1e-3 * np.abs(ref).max()
    assert not np.array_equal(fast, plain)   # the folded copy ran
    if _onednn_fusion_available():
        net.set_fast_inference(True)
        blocks = [m for m in net.fast_model().modules() if isinstance(m, DextrBottleneck)]
        assert len(blocks) == 33 and all('forward' in m.__dict__ for m in blocks)


def test_config_round_trip_through_own_checkpoint(tmp_path, reference_sd):
    net = DextrModel(n_classes=1, n_input_channels=4, classifier='psp')
    assert net._config['class'] == 'isegm.model.is_dextr_model.DextrModel'
    assert set(net._config['params']) == {'n_classes', 'n_input_channels', 'classifier'}
    net.load_state_dict(reference_sd)
    path = tmp_path / 'own.pth'
    torch.save({'state_dict': net.state_dict(), 'config': net._config}, path)
    ckpt = torch.load(path, map_location='cpu', weights_only=True)
    rebuilt = build_from_config(ckpt['config'], {'isegm.model.is_dextr_model.DextrModel': DextrModel})
    rebuilt.load_state_dict(ckpt['state_dict'], strict=True)
    assert isinstance(rebuilt, DextrModel)
    assert torch.equal(rebuilt.layer5.final.weight, reference_sd['layer5.final.weight'])


def test_official_checkpoint_variants_are_cleaned(tmp_path, schema, reference_sd):
    # What an old DataParallel-trained DEXTR file holds: 'module.' prefix, no num_batches_tracked.
    legacy = {'module.' + k: v for k, v in reference_sd.items() if not k.endswith('num_batches_tracked')}
    assert len(legacy) < 656
    path = tmp_path / 'dextr_pascal-sbd.pth'
    torch.save(legacy, path)
    clean = dextr_state_dict_from_checkpoint(torch.load(path, map_location='cpu', weights_only=True))
    assert list(clean.keys()) == [key for key, _, _ in schema]
    for key, value in clean.items():
        assert torch.equal(value, reference_sd[key]), key
    assert clean['bn1.num_batches_tracked'].dtype == torch.int64

    net = DextrModel.from_state_dict(legacy)
    assert not net.training
    assert torch.equal(net.conv1.weight, reference_sd['conv1.weight'])
    # A clean state_dict passes through unchanged, also wrapped in our checkpoint format.
    assert list(dextr_state_dict_from_checkpoint({'state_dict': reference_sd})) == list(reference_sd)


@pytest.mark.parametrize('bad', [[1, 2], {}, {'conv1.weight': 'x'},
                                 {'feature_extractor.conv1.weight': torch.zeros(1)}])
def test_foreign_checkpoints_raise(bad):
    with pytest.raises(CheckpointError):
        dextr_state_dict_from_checkpoint(bad)


def test_mismatching_weights_raise_checkpoint_error(reference_sd):
    broken = dict(reference_sd)
    broken['layer4.0.conv1.weight'] = torch.zeros(3, 3, 1, 1)
    with pytest.raises(CheckpointError, match='does not fit'):
        DextrModel.from_state_dict(broken)


@pytest.fixture(scope='module')
def pipeline_run(model, pipeline):
    """Prepared sample and crop-level probabilities for the fixture's object (one network call)."""
    predictor = ExtremePointsPredictor(model, clip_probs=False)
    points_yx = pipeline['extreme_points_ori'][:, ::-1]  # fixture stores (x, y)
    sample = predictor.prepare(pipeline['image'], points_yx)
    return sample, predictor.predict_crops([sample])[0]


def test_demo_pipeline_reproduced(model, pipeline, pipeline_run, dextr_dir):
    sample, pred_512 = pipeline_run
    assert sample.bbox == tuple(pipeline['bbox'])
    assert sample.keep_box == (122, 116, 358, 370)

    io = np.load(dextr_dir / 'io.npz')
    np.testing.assert_array_equal(sample.net_input[None], io['input'])

    assert pred_512.dtype == np.float32
    assert np.abs(pred_512 - pipeline['pred_512']).max() < 1e-4

    full_prob = ExtremePointsPredictor(model, clip_probs=False).paste(sample, pred_512)
    ref = pipeline['full_prob']
    assert full_prob.shape == ref.shape and full_prob.dtype == np.float32
    assert np.abs(full_prob - ref).max() < 1e-4

    expected = cv2.imread(str(dextr_dir / 'expected_mask.png'), cv2.IMREAD_UNCHANGED) > 127
    np.testing.assert_array_equal(expected, pipeline['mask'])
    mask = full_prob > 0.8
    ambiguous = np.abs(ref - 0.8) < 1e-4
    assert mask.any()
    np.testing.assert_array_equal(mask[~ambiguous], expected[~ambiguous])


def test_probabilities_clipped_by_default(model, pipeline, pipeline_run):
    sample, pred_512 = pipeline_run
    prob = ExtremePointsPredictor(model).paste(sample, pred_512)
    ref = pipeline['full_prob']
    assert ref.min() < 0 and ref.max() > 1  # bicubic overshoot exists in the reference
    assert prob.min() >= 0 and prob.max() <= 1
    assert np.abs(prob - np.clip(ref, 0, 1)).max() < 1e-4


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a CUDA device')
def test_demo_pipeline_on_cuda(reference_sd, pipeline, dextr_dir):
    net = DextrModel()
    net.load_state_dict(reference_sd)
    predictor = ExtremePointsPredictor(net, device='cuda:0', clip_probs=False)
    prob = predictor.predict(pipeline['image'], pipeline['extreme_points_ori'][:, ::-1])
    # TF32 convolutions: looser than on CPU, but a wrong layer or interpolation would be off by ~1.
    assert np.abs(prob - pipeline['full_prob']).max() < 5e-2
    assert ((prob > 0.8) != pipeline['mask']).mean() < 1e-3
