import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / 'shared'
REFERENCE = SHARED / 'reference'
DATASETS = SHARED / 'datasets'
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


@pytest.fixture(scope='session')
def reference_dir():
    if not REFERENCE.is_dir():
        pytest.skip('../shared/reference is absent')
    return REFERENCE


@pytest.fixture(scope='session')
def datasets_dir():
    if not DATASETS.is_dir():
        pytest.skip('../shared/datasets is absent')
    return DATASETS


@pytest.fixture(scope='session')
def reference_weights(reference_dir):
    """The fixtures' deterministic-weights module (reference_weights.py from ../shared/reference)."""
    import importlib.util
    spec = importlib.util.spec_from_file_location('reference_weights', reference_dir / 'reference_weights.py')
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope='module')
def one_torch_thread():
    """One intra-op torch thread for a module (restored after it): the CI box has 2 shared cores, where a
    single thread keeps heavy CPU tests fast and predictable."""
    import torch
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
