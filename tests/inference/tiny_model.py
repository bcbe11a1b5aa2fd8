"""A tiny real ISModel for fast predictor tests (random weights, fixed seed)."""
import torch
from torch import nn

from isegm.model.is_model import ISModel


class TinyISModel(ISModel):
    """One stride-2 conv on the image plus the click-map branch, one conv head: logits at half size."""

    def __init__(self, with_prev_mask: bool = False):
        super().__init__(use_rgb_conv=False, use_disks=True, norm_radius=5, with_prev_mask=with_prev_mask)
        self.feature_extractor = nn.Conv2d(3, 64, kernel_size=3, stride=2, padding=1)
        self.head = nn.Conv2d(64, 1, kernel_size=3, padding=1)

    def backbone_forward(self, image, coord_features=None):
        x = self.feature_extractor(image)
        if coord_features is not None:
            x = x + 20 * coord_features
        return {'instances': self.head(torch.relu(x))}


def make_tiny_model(with_prev_mask: bool = False, seed: int = 0) -> TinyISModel:
    torch.manual_seed(seed)
    return TinyISModel(with_prev_mask=with_prev_mask).eval()


def make_image(h: int = 48, w: int = 64, seed: int = 0):
    import numpy as np
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)
