"""Bundled compact click model: EfficientNet-Lite0 (ImageNet) + FPN, ITER-M, disks r=5, trained on the
shared training pool (COCO_MVal_even, coco128-seg, BSDS500; never GrabCut/Berkeley)."""
from isegm.data.points_sampler import MultiPointSampler
from isegm.data.base import ComposeDataset
from isegm.data.transforms import click_train_augmentator
from isegm.engine.recipe_utils import load_imagenet, run_click_training, train_pool_readers
from isegm.model.is_compact_model import CompactClickModel

CROP_SIZE = (320, 320)
NUM_MAX_POINTS = 24
BATCH_SIZE = 8
NUM_EPOCHS = 120
EPOCH_LEN = 480
SINGLE_CLICK_PROB = 0.3


def init_model():
    return CompactClickModel(backbone='lite0', decoder_ch=64, use_disks=True, norm_radius=5,
                             with_prev_mask=True, with_aux_output=True)


def main(ctx):
    model = init_model()
    load_imagenet(model, ctx)
    # single_click_prob: 30 % of the samples start like the NoC protocol (one central click, no negatives);
    # ITER-M then adds 0-3 clicks on the errors (added in the fine-tune from epoch 72, docs/training.md)
    sampler = MultiPointSampler(NUM_MAX_POINTS, prob_gamma=0.80, merge_objects_prob=0.15, max_num_merged_objects=2,
                                single_click_prob=SINGLE_CLICK_PROB)
    readers, weights, val_samples = train_pool_readers(
        ctx, click_train_augmentator(CROP_SIZE, scale_range=(0.75, 1.40)), sampler, min_object_area=400)
    trainset = ComposeDataset(readers, weights, epoch_len=ctx.epoch_len or EPOCH_LEN)
    info = {'training_data': 'shared train pool: COCO_MVal_even (minus every 11th, held out), coco128-seg, BSDS500',
            'recipe': 'models/compact/efflite0_click_itermask.py', 'crop_size': list(CROP_SIZE)}
    run_click_training(ctx, model, trainset, NUM_EPOCHS, BATCH_SIZE, milestones=[90, 110], lr=5e-4,
                       val_samples=val_samples, info=info, val_kwargs={'max_size': 320})
