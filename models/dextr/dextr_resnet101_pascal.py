"""DEXTR ResNet-101 + PSP head on PASCAL VOC + SBD, as DEXTR-PyTorch's train_pascal.py: 512 x 512
relaxed crops (relax 30, zero padding), extreme points jittered by 5 px, heatmap sigma 10, flips,
rotation +-20 deg, scale 0.75-1.25, class-balanced BCE, 100 epochs (here with Adam instead of SGD)."""
from torch.utils.data import ConcatDataset

from isegm.data.datasets.pascalvoc import PascalVocDataset
from isegm.data.datasets.sbd import SBDDataset
from isegm.data.extreme_points import ExtremePointsDataset
from isegm.engine.recipe_utils import load_imagenet, run_extreme_training
from isegm.model.is_dextr_model import DextrModel


def main(ctx):
    model = DextrModel(n_classes=1, n_input_channels=4, classifier='psp')
    load_imagenet(model, ctx, 'RESNET101')
    kw = dict(resolution=512, relax=30, sigma=10, pert=5, min_object_area=400)
    trainset = ConcatDataset([ExtremePointsDataset(PascalVocDataset(ctx.path('PASCALVOC_PATH'), 'train'), **kw),
                              ExtremePointsDataset(SBDDataset(ctx.path('SBD_PATH'), 'train'), **kw)])
    valset = ExtremePointsDataset(PascalVocDataset(ctx.path('PASCALVOC_PATH'), 'val'), augment=False, **kw)
    run_extreme_training(ctx, model, trainset, num_epochs=100, batch_size=5, milestones=[80, 95], lr=1e-4,
                         valset=valset, info={'training_data': 'PASCAL VOC 2012 train + SBD train'})
