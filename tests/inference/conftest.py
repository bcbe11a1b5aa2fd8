"""Fixtures shared by the inference tests."""
import pytest


@pytest.fixture(scope='module')
def image(datasets_dir):
    """GrabCut 106024 shrunk to 96 x 72: a real image small enough for BRS optimisation in tests."""
    import cv2
    from isegm.utils.image_io import load_image
    full = load_image(datasets_dir / 'GrabCut' / 'data_GT' / '106024.jpg')
    return cv2.resize(full, (96, 72), interpolation=cv2.INTER_AREA)
