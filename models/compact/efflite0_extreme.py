"""Bundled compact extreme-point model: EfficientNet-Lite0 (ImageNet) + FPN on RGB + heatmap (DEXTR
input convention), trained on the shared training pool (never GrabCut/Berkeley).

DEXTR trains at 512 x 512 with a heatmap of sigma 10; that is too slow for the CPU this model is trained
on, so the crops are 320 x 320 and the heatmap width is scaled with them (10 * 320 / 512 = 6.25). The
model records both in its config (``input_size``, ``heatmap_sigma``), and ``ExtremePointsPredictor``
uses them unless told otherwise. Validation: mean IoU on the held-out COCO_MVal_even objects (every 11th).
"""
from isegm.data.base import DSample
from isegm.data.extreme_points import ExtremePointsDataset
from isegm.engine.recipe_utils import load_imagenet, run_extreme_training, train_pool_readers
from isegm.model.is_compact_model import CompactExtremeModel

RESOLUTION = 320
SIGMA = 10.0 * RESOLUTION / 512       # DEXTR's sigma 10 at 512, scaled to the crop size
PERT = 3                              # DEXTR's 5 px jitter at 512, scaled
RELAX = 30                            # context around the object's box (DEXTR: 50); the model records it
BATCH_SIZE = 8
NUM_EPOCHS = 200
EPOCH_LEN = 240


class _Mixed:
    """Readers mixed with the given weights, exposing ``get_sample`` (training: random picks)."""

    def __init__(self, readers, weights):
        import numpy as np
        self.readers, self.p = readers, np.asarray(weights) / sum(weights)
        self.dataset_samples = [(i, j) for i, r in enumerate(readers) for j in range(len(r.dataset_samples))]

    def get_sample(self, index):
        import numpy as np, random
        r = self.readers[int(np.random.choice(len(self.readers), p=self.p))]
        return r.get_sample(random.randrange(len(r.dataset_samples)))


class _HeldOut:
    """The held-out ``(image, mask, ignore)`` triples as a reader (one object each)."""

    def __init__(self, triples):
        self.dataset_samples = list(triples)

    def get_sample(self, index):
        image, mask, ignore = self.dataset_samples[index]
        return DSample(image, mask.astype('uint8'), ignore, sample_id=index)


def init_model():
    # grabcut_refine: its masks are refined by GrabCut at inference (isegm/inference/grabcut_refine.py);
    # training does not use it.
    return CompactExtremeModel(backbone='lite0', decoder_ch=64, input_size=RESOLUTION, heatmap_sigma=SIGMA,
                               crop_pad=RELAX, grabcut_refine=True)


def main(ctx):
    model = init_model()
    load_imagenet(model, ctx)
    readers, weights, held_out = train_pool_readers(ctx, None, None, min_object_area=0)
    trainset = ExtremePointsDataset(_Mixed(readers, weights), resolution=RESOLUTION, relax=RELAX, sigma=SIGMA,
                                    pert=PERT, min_object_area=1500, epoch_len=ctx.epoch_len or EPOCH_LEN)
    valset = ExtremePointsDataset(_HeldOut(held_out), resolution=RESOLUTION, relax=RELAX, sigma=SIGMA, pert=0,
                                  min_object_area=0, augment=False)
    info = {'training_data': 'shared train pool: COCO_MVal_even (minus every 11th, held out), coco128-seg, BSDS500',
            'recipe': 'models/compact/efflite0_extreme.py', 'resolution': RESOLUTION, 'heatmap_sigma': SIGMA}
    run_extreme_training(ctx, model, trainset, NUM_EPOCHS, BATCH_SIZE, milestones=[150, 185], lr=5e-4,
                         valset=valset, info=info)
