"""isegm.load_model: formats, zoo names, and every kind of bad checkpoint."""
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

import isegm
from isegm.errors import CheckpointError
from isegm.model.checkpoint import detect_format, load_model, resolve_checkpoint, save_checkpoint

RITM_CKPT = 'ritm/hrnet18s_cocolvis_itermask_3p/checkpoint.pth'


def _rel_err(out, ref):
    return float(np.abs(out - ref).max() / np.abs(ref).max())


@pytest.fixture(scope='module')
def ritm_ckpt(reference_dir):
    return reference_dir / RITM_CKPT


def test_real_format_checkpoint_reproduces_fixture(ritm_ckpt, reference_dir):
    model = isegm.load_model(str(ritm_ckpt), device='cpu')
    assert not model.training
    io = np.load(reference_dir / 'ritm/hrnet18s_cocolvis_itermask_3p/io.npz')
    x = torch.from_numpy(np.concatenate([io['image'], io['prev_mask']], axis=1))
    with torch.no_grad():
        out = model(x, torch.from_numpy(io['points']))
    assert _rel_err(out['instances'].numpy(), io['instances']) <= 1e-3
    assert _rel_err(out['instances_aux'].numpy(), io['instances_aux']) <= 1e-3


def test_checkpoint_is_weights_only_loadable(ritm_ckpt):
    obj = torch.load(ritm_ckpt, map_location='cpu', weights_only=True)
    assert detect_format(obj) == 'ritm'


def test_zoo_name_resolves_in_weights_folder(ritm_ckpt, tmp_path):
    (tmp_path / 'coco_lvis_h18s_itermask.pth').write_bytes(ritm_ckpt.read_bytes())
    m1 = load_model('coco_lvis_h18s_itermask', models_dir=tmp_path)
    m2 = load_model('hrnet18s_cocolvis_itermask_3p', models_dir=tmp_path)  # reference experiment name
    assert type(m1).__name__ == type(m2).__name__ == 'HRNetModel'


def test_known_name_missing_file_says_where_to_get_it(tmp_path):
    with pytest.raises(CheckpointError, match='coco_lvis_h18_itermask.pth'):
        load_model('coco_lvis_h18_itermask', models_dir=tmp_path)


def test_unknown_name(tmp_path):
    with pytest.raises(CheckpointError, match='unknown checkpoint'):
        load_model('no_such_model', models_dir=tmp_path)


def test_missing_path(tmp_path):
    with pytest.raises(CheckpointError, match='not found'):
        load_model(str(tmp_path / 'x' / 'model.pth'), models_dir=tmp_path)


def test_empty_file(tmp_path):
    p = tmp_path / 'empty.pth'
    p.write_bytes(b'')
    with pytest.raises(CheckpointError, match='empty'):
        load_model(str(p))


def test_truncated_file(ritm_ckpt, tmp_path):
    p = tmp_path / 'truncated.pth'
    data = ritm_ckpt.read_bytes()
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match='truncated'):
        load_model(str(p))


def test_garbage_file(tmp_path):
    p = tmp_path / 'garbage.pth'
    p.write_bytes(np.random.default_rng(0).bytes(5000))
    with pytest.raises(CheckpointError):
        load_model(str(p))


class _Evil:
    def __reduce__(self):
        return (print, ('this must never run',))


def test_pickled_code_is_refused(tmp_path):
    p = tmp_path / 'evil.pth'
    with open(p, 'wb') as f:
        pickle.dump({'state_dict': {}, 'config': _Evil()}, f)
    with pytest.raises(CheckpointError, match='weights_only'):
        load_model(str(p))


def test_foreign_state_dict(tmp_path):
    p = tmp_path / 'foreign.pth'
    torch.save({'fc.weight': torch.zeros(10, 4), 'fc.bias': torch.zeros(10)}, p)
    with pytest.raises(CheckpointError, match='no architecture'):
        load_model(str(p))


def test_foreign_non_checkpoint_object(tmp_path):
    p = tmp_path / 'list.pth'
    torch.save([1, 2, 3], p)
    with pytest.raises(CheckpointError, match='not a model checkpoint'):
        load_model(str(p))


def test_unknown_class_in_config(tmp_path, ritm_ckpt):
    obj = torch.load(ritm_ckpt, map_location='cpu', weights_only=True)
    obj['config']['class'] = 'os.system'
    p = tmp_path / 'bad_class.pth'
    torch.save(obj, p)
    with pytest.raises(CheckpointError, match='does not know'):
        load_model(str(p))


def test_mismatched_weights(tmp_path, ritm_ckpt):
    obj = torch.load(ritm_ckpt, map_location='cpu', weights_only=True)
    obj['config']['params']['ocr_width']['value'] = 64  # weights are for ocr_width 48
    p = tmp_path / 'mismatch.pth'
    torch.save(obj, p)
    with pytest.raises(CheckpointError, match='does not fit'):
        load_model(str(p))
    obj = torch.load(ritm_ckpt, map_location='cpu', weights_only=True)
    del obj['state_dict']['feature_extractor.conv1.weight']
    torch.save(obj, p)
    with pytest.raises(CheckpointError, match='missing keys'):
        load_model(str(p))


def test_save_checkpoint_roundtrip(tmp_path, ritm_ckpt):
    model = load_model(str(ritm_ckpt))
    save_checkpoint(model, tmp_path / 'copy.pth', info={'note': 'roundtrip'})
    obj = torch.load(tmp_path / 'copy.pth', weights_only=True)
    assert obj['info'] == {'note': 'roundtrip'}
    model2, info = load_model(str(tmp_path / 'copy.pth'), return_info=True)
    for (k, a), (k2, b) in zip(model.state_dict().items(), model2.state_dict().items()):
        assert k == k2 and torch.equal(a, b)
    assert info['format'] == 'ritm'


def test_fbrs_bare_state_dicts_load(tmp_path, reference_dir, reference_weights):
    for name, cls_name in [('hrnet18_ocr64_sbd', 'FBRSHRNetModel'), ('resnet34_dh128_sbd', 'FBRSDeeplabModel')]:
        schema = reference_weights.load_schema(reference_dir / 'fbrs' / name / 'schema.json')
        sd = reference_weights.reference_state_dict(schema)
        p = tmp_path / f'{name}.pth'
        torch.save(sd, p)
        model = load_model(str(p))
        assert type(model).__name__ == cls_name
        io = np.load(reference_dir / 'fbrs' / name / 'io.npz')
        with torch.no_grad():
            out = model(torch.from_numpy(io['image']), torch.from_numpy(io['points']))['instances']
        assert _rel_err(out.numpy(), io['instances']) <= 1e-3


def test_dextr_state_dict_with_module_prefix_and_no_counters(tmp_path, reference_dir, reference_weights):
    schema = reference_weights.load_schema(reference_dir / 'dextr' / 'schema.json')
    sd = reference_weights.reference_state_dict(schema)
    legacy = {'module.' + k: v for k, v in sd.items() if not k.endswith('num_batches_tracked')}
    p = tmp_path / 'dextr_pascal-sbd.pth'
    torch.save(legacy, p)
    model = load_model(str(p), task='extreme')
    assert type(model).__name__ == 'DextrModel'
    io = np.load(reference_dir / 'dextr' / 'io.npz')
    with torch.no_grad():
        out = model(torch.from_numpy(io['input']))
    assert _rel_err(out.numpy(), io['output']) <= 1e-3


def test_fbrs_top_level_aspp_dropout_key(tmp_path, reference_dir, reference_weights):
    schema = reference_weights.load_schema(reference_dir / 'fbrs' / 'resnet34_dh128_sbd' / 'schema.json')
    sd = reference_weights.reference_state_dict(schema)
    sd['aspp_dropout'] = torch.tensor(0.5)
    p = tmp_path / 'r34.pth'
    torch.save(sd, p)
    model = load_model(str(p))
    assert model._config['params']['aspp_dropout']['value'] == pytest.approx(0.5)


@pytest.mark.parametrize('device', ['banana', 'cuda:x', 3.5])
def test_bad_device_is_an_input_error(device):
    from isegm.errors import InputError
    with pytest.raises(InputError, match='device must be'):
        isegm.load_model(None, device=device)


BUNDLED_CLICK = Path(__file__).resolve().parents[2] / 'weights' / 'isegm_compact_click_bundled.pth'


def _edited_bundled(tmp_path, edit):
    obj = torch.load(BUNDLED_CLICK, map_location='cpu', weights_only=True)
    edit(obj)
    p = tmp_path / 'edited.pth'
    torch.save(obj, p)
    return p


def _set_param(name, value):
    def edit(obj):
        obj['config']['params'][name]['value'] = value
    return edit


@pytest.mark.parametrize('edit, message', [
    (lambda o: o.__setitem__('config', ['a', 'b']), 'not a model config'),
    (lambda o: o['config'].__setitem__('params', 'zzz'), 'not a model config'),
    (lambda o: o['config'].__setitem__('class', 3), 'not a model config'),
    (lambda o: o.__setitem__('state_dict', [1, 2, 3]), 'not a dict of tensors'),
    (lambda o: o['state_dict'].__setitem__('decoder.head.weight', 1.5), 'not a dict of tensors'),
    (_set_param('decoder_ch', -4), 'cannot build'),   # the constructor itself fails (negative channels)
])
def test_edited_checkpoints_are_checkpoint_errors_naming_the_file(tmp_path, edit, message):
    p = _edited_bundled(tmp_path, edit)
    with pytest.raises(CheckpointError, match=message) as info:
        load_model(str(p))
    assert 'edited.pth' in str(info.value)


def test_checkpoint_name_prefix_must_be_unambiguous(tmp_path):
    data = BUNDLED_CLICK.read_bytes()
    for name in ('mine_a.pth', 'mine_b.pth', 'other_extreme.pth', 'other_click.pth'):
        (tmp_path / name).write_bytes(data)
    assert type(load_model('mine_a', models_dir=tmp_path)).__name__ == 'CompactClickModel'   # exact name
    with pytest.raises(CheckpointError, match='ambiguous'):
        load_model('mine', models_dir=tmp_path)
    # the task breaks the tie: one of the 'other' files is named as an extreme-point model
    assert resolve_checkpoint('other', task='click', models_dir=tmp_path).name == 'other_click.pth'
    assert resolve_checkpoint('other', task='extreme', models_dir=tmp_path).name == 'other_extreme.pth'
    with pytest.raises(CheckpointError):
        load_model('', models_dir=tmp_path)
    with pytest.raises(CheckpointError, match='unknown checkpoint'):
        load_model('m*', models_dir=tmp_path)   # glob characters are literal


@pytest.mark.parametrize('task', ['bogus', '', None])
def test_unknown_task_is_an_input_error(task):
    from isegm.errors import InputError
    with pytest.raises(InputError, match='task must be'):
        isegm.load_model(None, task=task)


def test_checkpoint_of_wrong_type_is_an_input_error():
    from isegm.errors import InputError
    with pytest.raises(InputError, match='path or a model name'):
        isegm.load_model(123)
