"""Checkpoint loading: RITM / our own (dict with ``state_dict`` + ``config``), f-BRS (bare state_dict,
architecture inferred from the keys) and DEXTR (bare state_dict, maybe ``module.``-prefixed).

Everything is read with ``torch.load(..., weights_only=True)``; classes are built only through the
explicit :data:`CLASS_TABLE` (never by importing a path found in a file).
"""
from __future__ import annotations

import importlib
import logging
import os
import pickle
import zipfile
from pathlib import Path
from typing import Any, Dict, Optional, Tuple, Union

import torch
from torch import nn

from isegm.errors import CheckpointError, InputError
from isegm.model import zoo
from isegm.utils.config import load_config
from isegm.utils.serialization import build_from_config

logger = logging.getLogger(__name__)
PathLike = Union[str, os.PathLike]
TASKS = ('click', 'extreme')

# Dotted class path found in a checkpoint -> (our module, class name). Reference paths map to our classes.
CLASS_TABLE: Dict[str, Tuple[str, str]] = {
    'isegm.model.is_hrnet_model.HRNetModel': ('isegm.model.is_hrnet_model', 'HRNetModel'),
    'isegm.model.is_deeplab_model.DeeplabModel': ('isegm.model.is_deeplab_model', 'DeeplabModel'),
    'isegm.model.fbrs_models.FBRSHRNetModel': ('isegm.model.fbrs_models', 'FBRSHRNetModel'),
    'isegm.model.fbrs_models.FBRSDeeplabModel': ('isegm.model.fbrs_models', 'FBRSDeeplabModel'),
    'isegm.model.is_dextr_model.DextrModel': ('isegm.model.is_dextr_model', 'DextrModel'),
    'isegm.model.is_compact_model.CompactClickModel': ('isegm.model.is_compact_model', 'CompactClickModel'),
    'isegm.model.is_compact_model.CompactExtremeModel': ('isegm.model.is_compact_model', 'CompactExtremeModel'),
}


def register_class(dotted_path: str, module: str, name: str) -> None:
    """Make a model class loadable from checkpoints whose config names ``dotted_path``."""
    CLASS_TABLE[dotted_path] = (module, name)


def _resolve_class(dotted_path: str) -> type:
    if dotted_path not in CLASS_TABLE:
        known = ', '.join(sorted(CLASS_TABLE))
        raise CheckpointError(f'the checkpoint asks for model class {dotted_path!r}, which isegm does not '
                              f'know. Known classes: {known}.')
    module, name = CLASS_TABLE[dotted_path]
    return getattr(importlib.import_module(module), name)


# ----------------------------------------------------------------------------------------------------
# Finding the file
# ----------------------------------------------------------------------------------------------------
def resolve_checkpoint(checkpoint: Optional[PathLike], task: str = 'click',
                       models_dir: Optional[PathLike] = None) -> Path:
    """Path of a checkpoint given as a path, a zoo name/alias, a file name in the weights folder or
    None (the bundled default for ``task``)."""
    if task not in TASKS:
        raise InputError(f"task must be one of {', '.join(TASKS)}, got {task!r}")
    if not isinstance(checkpoint, (str, os.PathLike, type(None))):
        raise InputError(f'checkpoint must be a path or a model name, got {type(checkpoint).__name__}')
    wdir = Path(models_dir) if models_dir else Path(load_config()['INTERACTIVE_MODELS_PATH'])
    if checkpoint is None:
        name = zoo.default_model_name(task)
        entry = zoo.get(name) if name is not None else None
        if entry is not None and (wdir / entry.file).is_file():
            return wdir / entry.file
        if name is not None:
            logger.warning('the default %s model %s is not in %s; looking for another checkpoint there',
                           task, name, wdir)
        found = sorted(wdir.glob('*.pth')) if wdir.is_dir() else []
        for f in found:
            if _looks_like_task(f, task):
                logger.warning('no bundled default %s model found; using %s', task, f.name)
                return f
        raise CheckpointError(f'no {task} model is available: the weights folder {wdir} has no checkpoint. '
                              f'Put a checkpoint there or pass --checkpoint=PATH_OR_NAME '
                              f'(known names: {", ".join(e.name for e in zoo.list_models(task))}).')
    path = Path(checkpoint).expanduser()
    if path.is_file():
        return path
    entry = zoo.get(str(checkpoint))
    candidates = []
    if entry is not None:
        candidates.append(wdir / entry.file)
    name = str(checkpoint)
    is_plain_name = not path.is_absolute() and os.sep not in name and '/' not in name
    if not path.is_absolute():
        candidates += [wdir / name, wdir / f'{name}.pth']
    for c in candidates:
        if c.is_file():
            return c
    if is_plain_name and name and wdir.is_dir():   # a unique prefix, as RITM's find_checkpoint accepts
        matches = sorted(f for f in wdir.rglob(f'{glob_escape(name)}*.pth') if f.is_file())
        if len(matches) > 1:
            matches = [f for f in matches if _looks_like_task(f, task)] or matches
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise CheckpointError(f'checkpoint name {name!r} is ambiguous: it starts {len(matches)} files in {wdir} '
                                  f'({", ".join(f.name for f in matches[:6])}). Pass the full name or the path.')
    if entry is not None and entry.bundled:
        raise CheckpointError(f'the bundled checkpoint {entry.name!r} ({entry.file}) is not in the weights folder '
                              f'{wdir}. Restore it from the repository, or export it from a training run with '
                              f'`python scripts/export_bundled.py` (see docs/training.md).')
    if entry is not None:
        raise CheckpointError(f'checkpoint {entry.name!r} is not in the weights folder {wdir}. Download it '
                              f'from {entry.url} into that folder (or run `python scripts/download_weights.py '
                              f'{entry.name}`), or pass the file path with --checkpoint.')
    if path.suffix or os.sep in name:
        raise CheckpointError(f'checkpoint file not found: {path}. Check the path, or pass a model name '
                              f'from the zoo (see README, "Model zoo").')
    raise CheckpointError(f'unknown checkpoint {name!r}: not a file, not in {wdir}, and not a zoo name. '
                          f'Known names: {", ".join(e.name for e in zoo.list_models())}.')


def glob_escape(text: str) -> str:
    """``text`` with the glob wildcards ``* ? [`` made literal."""
    return ''.join(f'[{c}]' if c in '*?[' else c for c in text)


def _looks_like_task(path: Path, task: str) -> bool:
    entry = zoo.get(path.name)
    if entry is not None:
        return entry.task == task
    is_extreme = 'dextr' in path.name.lower() or 'extreme' in path.name.lower()
    return is_extreme == (task == 'extreme')


# ----------------------------------------------------------------------------------------------------
# Reading the file
# ----------------------------------------------------------------------------------------------------
def read_checkpoint(path: PathLike) -> Any:
    """``torch.load(path, weights_only=True)`` with every failure turned into a CheckpointError."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f'checkpoint file not found: {path}')
    if path.stat().st_size == 0:
        raise CheckpointError(f'checkpoint {path} is empty (0 bytes): the download or copy did not finish. '
                              f'Get the file again.')
    try:
        return torch.load(path, map_location='cpu', weights_only=True)
    except pickle.UnpicklingError as e:
        raise CheckpointError(f'checkpoint {path.name} holds Python objects that are not plain data, so it '
                              f'was not loaded (weights_only=True refuses to run code from a file). If it is a '
                              f'full pickled model, re-save its state_dict and config. Details: '
                              f'{str(e).splitlines()[0]}')
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError, KeyError, AttributeError,
            IndexError, TypeError) as e:
        raise CheckpointError(f'cannot read checkpoint {path.name}: it is truncated, corrupt or not a PyTorch '
                              f'file ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ""}). '
                              f'Download or copy it again.')


def _is_tensor_dict(obj: Any) -> bool:
    return isinstance(obj, dict) and len(obj) > 0 and all(
        isinstance(v, torch.Tensor) for k, v in obj.items() if k != 'aspp_dropout')


def _strip_module_prefix(sd: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    if sd and all(k.startswith('module.') for k in sd):
        return {k[len('module.'):]: v for k, v in sd.items()}
    return sd


def state_dict_of(obj: Any) -> Optional[Dict[str, Any]]:
    """The weights a loaded checkpoint holds (its ``state_dict`` entry, or the object itself when it is a
    bare state_dict), without DataParallel's ``module.`` prefix; None when it holds no tensor dict."""
    sd = obj.get('state_dict', obj) if isinstance(obj, dict) else obj
    return _strip_module_prefix(sd) if _is_tensor_dict(sd) else None


def detect_format(obj: Any) -> str:
    """'ritm' (config + state_dict), 'fbrs-hrnet', 'fbrs-deeplab', 'dextr' or raise CheckpointError."""
    if isinstance(obj, dict) and 'state_dict' in obj and 'config' in obj:
        return 'ritm'
    sd = state_dict_of(obj)
    if sd is None:
        raise CheckpointError('the file is a PyTorch file but not a model checkpoint isegm knows: expected '
                              'a dict with "state_dict" and "config" (RITM / isegm), or a bare state_dict of '
                              'an f-BRS or DEXTR network.')
    keys = list(sd.keys())
    if any('feature_extractor.stage2.0.branches' in k for k in keys):
        return 'fbrs-hrnet'
    if any(k.startswith('feature_extractor.backbone') for k in keys):
        return 'fbrs-deeplab'
    if any(k.startswith('layer5.') for k in keys) and 'conv1.weight' in keys:
        return 'dextr'
    raise CheckpointError('the state_dict in this file belongs to no architecture isegm knows (RITM HRNet / '
                          'DeepLab, f-BRS HRNet / DeepLab, DEXTR). It may be a backbone or another project\'s '
                          f'model (first keys: {", ".join(keys[:3])}).')


def build_model(obj: Any) -> Tuple[nn.Module, Dict[str, torch.Tensor], str]:
    """Model (random init) + the state_dict to load into it + the detected format."""
    fmt = detect_format(obj)
    if fmt == 'ritm':
        config, sd = obj['config'], obj['state_dict']
        params = config.get('params', {}) if isinstance(config, dict) else None
        if not (isinstance(config, dict) and isinstance(config.get('class'), str) and isinstance(params, dict)
                and all(isinstance(p, dict) for p in params.values())):
            raise CheckpointError('the checkpoint\'s "config" is not a model config: expected {"class": dotted '
                                  'path, "params": {name: {"type", "value", "specified"}}}. The file was not '
                                  'written by isegm or RITM, or was edited.')
        if not _is_tensor_dict(sd):
            raise CheckpointError('the checkpoint\'s "state_dict" is not a dict of tensors. The file was not '
                                  'written by isegm or RITM, or was edited.')
        cls = _resolve_class(config['class'])
        try:
            model = build_from_config(config, {config['class']: cls})
        except CheckpointError:
            raise
        except Exception as e:   # any failure of the constructor on these parameters is the file's fault
            raise CheckpointError(f'the config stored in the checkpoint cannot build {config["class"]}: '
                                  f'{type(e).__name__}: {e}') from e
        return model, sd, fmt
    sd = state_dict_of(obj)
    if fmt == 'fbrs-hrnet':
        from isegm.model.fbrs_models import FBRSHRNetModel, hrnet_params_from_fbrs_state_dict
        model = FBRSHRNetModel(**hrnet_params_from_fbrs_state_dict(sd))
    elif fmt == 'fbrs-deeplab':
        from isegm.model.fbrs_models import FBRSDeeplabModel, deeplab_params_from_fbrs_state_dict
        model = FBRSDeeplabModel(**deeplab_params_from_fbrs_state_dict(sd))
    else:
        from isegm.model.is_dextr_model import DextrModel, dextr_state_dict_from_checkpoint
        model = DextrModel()
        sd = dextr_state_dict_from_checkpoint(sd)
    # f-BRS files may carry a top-level 'aspp_dropout' hyper-parameter beside the weights
    sd = {k: v for k, v in sd.items() if isinstance(v, torch.Tensor) and k != 'aspp_dropout'}
    return model, sd, fmt


def load_state_dict_checked(model: nn.Module, state_dict: Dict[str, torch.Tensor], name: str = '',
                            target: str = 'the architecture its config describes') -> None:
    """Load strictly, but fill counters that old PyTorch did not save and cast float tensors stored in
    another precision (fp16 bundled weights) to the model's; explain any mismatch (with ``model`` called
    ``target`` in the message)."""
    own = model.state_dict()
    sd = dict(state_dict)
    for k, v in own.items():
        if k.endswith('num_batches_tracked') and k not in sd:
            sd[k] = v.clone()
    missing = [k for k in own if k not in sd]
    unexpected = [k for k in sd if k not in own]
    wrong_shape = [f'{k} {tuple(sd[k].shape)} vs {tuple(own[k].shape)}' for k in own
                   if k in sd and tuple(sd[k].shape) != tuple(own[k].shape)]
    if missing or unexpected or wrong_shape:
        parts = []
        if missing:
            parts.append(f'{len(missing)} missing keys (e.g. {", ".join(missing[:3])})')
        if unexpected:
            parts.append(f'{len(unexpected)} unexpected keys (e.g. {", ".join(unexpected[:3])})')
        if wrong_shape:
            parts.append(f'{len(wrong_shape)} tensors of the wrong shape (e.g. {wrong_shape[0]})')
        raise CheckpointError(f'checkpoint {name} does not fit {target}: '
                              f'{"; ".join(parts)}. The file may belong to another model or another version.')
    for k, v in sd.items():  # fp16-stored weights (bundled models) -> the model's own float dtype
        if v.is_floating_point() and own[k].is_floating_point() and v.dtype != own[k].dtype:
            sd[k] = v.to(own[k].dtype)
    model.load_state_dict(sd, strict=True)


def resolve_device(device: Union[str, int, torch.device, None]) -> torch.device:
    """'cpu', 'cuda', 'cuda:N', an int GPU id or None (cpu). Falls back to CPU with a warning when CUDA
    is missing."""
    if device is None:
        return torch.device('cpu')
    if isinstance(device, int):
        device = f'cuda:{device}'
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise InputError(f"device must be 'cpu', 'cuda', 'cuda:N' or a GPU id, got {device!r}") from exc
    if dev.type == 'cuda' and not torch.cuda.is_available():
        logger.warning('CUDA is not available; running on the CPU instead of %s', device)
        return torch.device('cpu')
    return dev


def load_model(checkpoint: Optional[PathLike] = None, device: Union[str, int, torch.device, None] = 'cpu',
               task: str = 'click', models_dir: Optional[PathLike] = None,
               return_info: bool = False, fast_inference: bool = True):
    """Load a checkpoint (path, zoo name or None for the bundled default) -> model in eval mode on device.

    Raises :class:`CheckpointError` for missing, truncated, foreign or mismatching files, with a message
    that says what to do. ``fast_inference`` switches on the model's fast path (BN folded, channels_last;
    see :mod:`isegm.model.fast_inference`) where it has one; the plain modules stay the reference.
    ``task`` ('click' or 'extreme') picks the default model and breaks ties between checkpoint names; a
    checkpoint named explicitly is loaded whatever it is (check ``model.task``).
    With ``return_info`` also returns a dict (path, format, config/info).
    """
    path = resolve_checkpoint(checkpoint, task=task, models_dir=models_dir)
    obj = read_checkpoint(path)
    try:
        model, sd, fmt = build_model(obj)
    except CheckpointError as exc:
        raise CheckpointError(f'{path.name}: {exc}') from exc
    load_state_dict_checked(model, sd, path.name)
    model.eval()
    model.to(resolve_device(device))
    if hasattr(model, 'set_fast_inference'):
        model.set_fast_inference(fast_inference)
    if return_info:
        info = {'path': str(path), 'format': fmt, 'name': path.stem,
                'info': obj.get('info') if isinstance(obj, dict) else None}
        return model, info
    return model


def save_checkpoint(model: nn.Module, path: PathLike, info: Optional[Dict[str, Any]] = None) -> None:
    """Write ``{'state_dict', 'config', 'info'}`` (RITM format; weights_only-loadable), atomically."""
    config = getattr(model, '_config', None)
    if config is None:
        raise CheckpointError(f'{type(model).__name__} has no _config: decorate its __init__ with @serialize')
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f'.{path.name}.tmp{os.getpid()}')
    payload = {'state_dict': model.state_dict(), 'config': config}
    if info is not None:
        payload['info'] = info
    try:
        torch.save(payload, tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
