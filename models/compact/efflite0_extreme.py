"""Bundled compact extreme-point model: EfficientNet-Lite0 (ImageNet) + FPN on RGB + heatmap (DEXTR
input convention), 512 x 512 relaxed crops, trained on the shared training pool."""
from isegm.data.extreme_points import ExtremePointsDataset
from isegm.data.base import ComposeDataset
from isegm.engine.recipe_utils import load_imagenet, run_extreme_training, train_pool_readers
from isegm.model.is_compact_model import CompactExtremeModel

RESOLUTION = 512
BATCH_SIZE = 8
NUM_EPOCHS = 60
EPOCH_LEN = 800


class _Mixed:
    """Round-robin over readers weighted like ComposeDataset, exposing ``get_sample``."""

    def __init__(self, readers, weights):
        import numpy as np
        self.readers, self.p = readers, np.asarray(weights) / sum(weights)
        self.dataset_samples = [(i, j) for i, r in enumerate(readers) for j in range(len(r.dataset_samples))]

    def get_sample(self, index):
        import numpy as np, random
        r = self.readers[int(np.random.choice(len(self.readers), p=self.p))]
        return r.get_sample(random.randrange(len(r.dataset_samples)))


def main(ctx):
    model = CompactExtremeModel(backbone='lite0', decoder_ch=64)
    load_imagenet(model, ctx)
    readers, weights, _ = train_pool_readers(ctx, None, None, min_object_area=0)
    trainset = ExtremePointsDataset(_Mixed(readers, weights), resolution=RESOLUTION, relax=30, sigma=10, pert=5,
                                    min_object_area=1500, epoch_len=ctx.epoch_len or EPOCH_LEN)
    info = {'training_data': 'shared train pool: COCO_MVal_even (minus every 11th), coco128-seg, BSDS500',
            'recipe': 'models/compact/efflite0_extreme.py', 'resolution': RESOLUTION}
    run_extreme_training(ctx, model, trainset, NUM_EPOCHS, BATCH_SIZE, milestones=[45, 55], lr=5e-4, info=info)
