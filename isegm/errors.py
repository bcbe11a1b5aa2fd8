"""Exception hierarchy of isegm. Messages say what went wrong and what to do about it."""


class IsegmError(Exception):
    """Base class of every error isegm raises on purpose."""


class CheckpointError(IsegmError):
    """A checkpoint is missing, truncated, of a foreign format or does not fit its architecture."""


class ImageLoadError(IsegmError):
    """An image file cannot be read or converted to RGB uint8."""


class InputError(IsegmError, ValueError):
    """Arguments of a public call are malformed (clicks, masks, shapes)."""


class PredictorStateError(IsegmError, RuntimeError):
    """A predictor method was called out of order (e.g. prediction before set_input_image)."""
