"""A tiny ISModel and a generated dataset of bright shapes for fast training tests."""
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from isegm.data.base import DSample, ISDataset
from isegm.data.points_sampler import MultiPointSampler
from isegm.model.is_model import ISModel
from isegm.utils.serialization import serialize


class TinyClickModel(ISModel):
    @serialize
    def __init__(self, width: int = 16, **kwargs):
        super().__init__(**kwargs)
        self.feature_extractor = nn.Sequential(
            nn.Conv2d(3, width, 3, stride=2, padding=1), nn.BatchNorm2d(width), nn.ReLU(),
            nn.Conv2d(width, 64, 3, padding=1), nn.ReLU())
        self.body = nn.Sequential(nn.Conv2d(64, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU())
        self.head = nn.Conv2d(width, 1, 1)
        self.aux = nn.Conv2d(width, 1, 1) if self.with_aux_output else None

    def backbone_forward(self, image, coord_features=None):
        x = self.feature_extractor(image)
        if coord_features is not None:
            x = x + coord_features
        x = self.body(x)
        out = {'instances': self.head(x)}
        if self.with_aux_output:
            out['instances_aux'] = self.aux(x)
        return out


CLASS_TABLE = {'tests.engine.tiny.TinyClickModel': TinyClickModel}


class ShapesDataset(ISDataset):
    """Rectangles and discs, brighter than a noisy dark background, 48 x 48."""

    def __init__(self, n: int = 16, size: int = 48, seed: int = 0, **kwargs):
        kwargs.setdefault('points_sampler', MultiPointSampler(4, prob_gamma=0.7))
        super().__init__(**kwargs)
        rng = np.random.default_rng(seed)
        self.dataset_samples = []
        for i in range(n):
            img = rng.integers(0, 60, (size, size, 3)).astype(np.uint8)
            masks = np.zeros((size, size, 2), np.uint8)
            for k in range(2):
                y0, x0 = rng.integers(2, size // 2, 2)
                h, w = rng.integers(8, size // 2, 2)
                masks[y0:y0 + h, x0:x0 + w, k] = 1
                img[masks[:, :, k] > 0] = rng.integers(150, 255, 3)
            masks[:, :, 1][masks[:, :, 0] > 0] = 0
            self.dataset_samples.append(DSample(img, masks))

    def get_sample(self, index):
        s = self.dataset_samples[index]
        return DSample(s.image.copy(), s.masks.copy(), None, index)
