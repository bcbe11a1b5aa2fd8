"""isegm: interactive image segmentation engine (RITM / f-BRS / DEXTR compatible)."""
from isegm.errors import CheckpointError, ImageLoadError, InputError, IsegmError

__version__ = '0.1.0'

__all__ = ['load_model', 'CheckpointError', 'ImageLoadError', 'InputError', 'IsegmError', '__version__']


def load_model(checkpoint=None, device='cpu', **kwargs):
    """Load a checkpoint (path or zoo name; None = bundled default) and return the model in eval mode.

    See :func:`isegm.model.checkpoint.load_model`.
    """
    from isegm.model.checkpoint import load_model as _load_model
    return _load_model(checkpoint, device=device, **kwargs)
