"""Project configuration (config.yml): paths only; everything else comes from command-line flags."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Dict, Optional, Union

import yaml

from isegm.errors import IsegmError

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_CONFIG = PROJECT_ROOT / 'config.yml'


def load_config(path: Optional[Union[str, os.PathLike]] = None) -> Dict[str, Any]:
    """Read config.yml (``$ISEGM_CONFIG`` or the project's) and make every ``*_PATH`` value absolute,
    relative to the config file's folder. A missing file gives the built-in defaults."""
    path = Path(path or os.environ.get('ISEGM_CONFIG') or DEFAULT_CONFIG)
    cfg: Dict[str, Any] = {'INTERACTIVE_MODELS_PATH': './weights', 'EXPS_PATH': './experiments'}
    if path.is_file():
        try:
            with open(path, 'r', encoding='utf-8') as f:
                cfg.update(yaml.safe_load(f) or {})
        except yaml.YAMLError as e:
            raise IsegmError(f'config file {path} is not valid YAML: {e}')
    base = path.parent if path.is_file() else PROJECT_ROOT

    def absolutise(d: Dict[str, Any]) -> Dict[str, Any]:
        out = {}
        for k, v in d.items():
            if isinstance(v, dict):
                out[k] = absolutise(v)
            elif isinstance(v, str) and (k.endswith('_PATH') or k.isupper() and '/' in v):
                out[k] = str((base / v).resolve()) if not os.path.isabs(v) else v
            else:
                out[k] = v
        return out

    return absolutise(cfg)


def weights_dir(cfg: Optional[Dict[str, Any]] = None) -> Path:
    cfg = cfg or load_config()
    return Path(cfg['INTERACTIVE_MODELS_PATH'])
