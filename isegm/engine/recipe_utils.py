"""Pieces the training recipes under ``models/`` share: the run context, dataset builders and the
standard RITM ITER-M / DEXTR training set-ups."""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

from isegm.errors import IsegmError

logger = logging.getLogger(__name__)

DEFAULT_TRAIN_POOL = Path(__file__).resolve().parents[3] / 'shared' / 'datasets' / 'train'


@dataclass
class RunContext:
    """What ``train.py`` hands to a recipe's ``main(ctx)``."""
    exp_path: Path
    paths: Dict[str, Any] = field(default_factory=dict)      # config.yml (dataset / weight paths)
    batch_size: Optional[int] = None                          # overrides the recipe's
    workers: int = 4
    device: Optional[str] = None
    epochs: Optional[int] = None                              # overrides the recipe's
    resume: bool = False
    max_iters_per_epoch: Optional[int] = None                 # smoke runs
    epoch_len: Optional[int] = None                           # overrides the recipe's
    pretrained: bool = True
    lr_milestones: Optional[List[int]] = None                 # overrides the recipe's (also when resuming)
    weights: Optional[Path] = None                            # initial weights (a checkpoint of the same model)
    channels_last: Optional[bool] = None                      # None: the trainer's default (on for CPU)

    def path(self, key: str, default=None) -> Path:
        value = self.paths.get(key, default)
        if value is None:
            raise IsegmError(f'{key} is not set: add it to config.yml (see docs/training.md)')
        return Path(value)


def train_pool_readers(ctx: RunContext, augmentator, points_sampler=None, min_object_area: int = 400,
                       holdout_every: int = 11):
    """Readers over ``TRAIN_POOL_PATH`` (COCO_MVal_even, coco128-seg, BSDS500) and validation samples
    (every ``holdout_every``-th COCO_MVal_even object, never trained on). Returns (readers, weights,
    val_samples)."""
    from isegm.data.datasets.custom import BSDSDataset, LabelFolderDataset, YoloSegDataset
    from isegm.data.datasets._common import read_label_image
    from isegm.utils.image_io import load_image
    root = ctx.path('TRAIN_POOL_PATH', DEFAULT_TRAIN_POOL)
    kw = dict(augmentator=augmentator, points_sampler=points_sampler, min_object_area=min_object_area,
              keep_background_prob=0.0)
    mval = LabelFolderDataset(root / 'COCO_MVal_even' / 'img', root / 'COCO_MVal_even' / 'gt', binary=True, **kw)
    held = mval.dataset_samples[::holdout_every]
    mval.dataset_samples = [s for i, s in enumerate(mval.dataset_samples) if i % holdout_every]
    yolo = YoloSegDataset(root / 'coco128-seg' / 'images' / 'train2017', root / 'coco128-seg' / 'labels' / 'train2017', **kw)
    bsds = BSDSDataset(root / 'BSDS500' / 'images', root / 'BSDS500' / 'groundTruth', **kw)
    val = []
    for image_path, label_path in held:
        val.append((load_image(image_path), read_label_image(label_path) > 127, None))
    return [mval, yolo, bsds], [0.35, 0.35, 0.30], val


def ritm_loss_cfg(aux_weight: float = 0.4):
    from isegm.model.losses import NormalizedFocalLossSigmoid, SigmoidBinaryCrossEntropyLoss
    cfg = {'instances': (NormalizedFocalLossSigmoid(alpha=0.5, gamma=2), 1.0)}
    if aux_weight > 0:
        cfg['instances_aux'] = (SigmoidBinaryCrossEntropyLoss(), aux_weight)
    return cfg


def run_click_training(ctx: RunContext, model, trainset, num_epochs: int, batch_size: int,
                       milestones: Sequence[int], lr: float = 5e-4, valset=None, val_samples=None,
                       max_num_next_clicks: int = 3, aux_weight: float = 0.4, info: Optional[Dict] = None,
                       val_kwargs: Optional[Dict] = None):
    """The RITM set-up: Adam(lr, betas 0.9/0.999), MultiStepLR(milestones, 0.1), NFL + 0.4 aux BCE,
    AdaptiveIoU, ITER-M with up to ``max_num_next_clicks`` extra clicks, checkpoint every epoch."""
    from isegm.engine.trainer import ISTrainer
    from isegm.model.metrics import AdaptiveIoU
    if not getattr(model, 'with_aux_output', False):
        aux_weight = 0.0
    return _run_training(ctx, ISTrainer, model, trainset, ritm_loss_cfg(aux_weight), num_epochs, batch_size,
                         milestones, {'lr': lr, 'betas': (0.9, 0.999), 'eps': 1e-8}, valset=valset,
                         val_samples=val_samples, max_num_next_clicks=max_num_next_clicks,
                         metrics=[AdaptiveIoU()], info=info, val_kwargs=val_kwargs)


def run_extreme_training(ctx: RunContext, model, trainset, num_epochs: int, batch_size: int,
                         milestones: Sequence[int], lr: float = 5e-4, valset=None, info: Optional[Dict] = None):
    """DEXTR-style training with Adam and class-balanced BCE (DEXTR itself uses SGD with an unnormalised
    loss; the normalised loss makes the learning rate independent of the resolution)."""
    from isegm.engine.extreme_trainer import ExtremeTrainer
    from isegm.model.losses import ClassBalancedBCELoss
    return _run_training(ctx, ExtremeTrainer, model, trainset, {'instances': (ClassBalancedBCELoss(), 1.0)},
                         num_epochs, batch_size, milestones, {'lr': lr}, valset=valset,
                         max_num_next_clicks=0, info=info)


def _run_training(ctx: RunContext, trainer_cls, model, trainset, loss_cfg, num_epochs: int, batch_size: int,
                  milestones: Sequence[int], optimizer_params: Dict, **trainer_kwargs):
    """Adam + MultiStepLR(milestones, 0.1) with the run context's batch size, workers, device, smoke-run
    limits and LR milestones (``ctx.lr_milestones`` replaces the recipe's); resumes when asked; returns the
    per-epoch stats."""
    milestones = ctx.lr_milestones or milestones
    if ctx.weights and not ctx.resume:
        load_initial_weights(model, ctx.weights)
        trainer_kwargs['info'] = dict(trainer_kwargs.get('info') or {}, initial_weights=str(ctx.weights))
    trainer = trainer_cls(
        model, trainset, loss_cfg, ctx.exp_path, optimizer='adam', optimizer_params=optimizer_params,
        lr_scheduler=partial(torch.optim.lr_scheduler.MultiStepLR, milestones=list(milestones), gamma=0.1),
        batch_size=ctx.batch_size or batch_size, workers=ctx.workers, device=ctx.device,
        max_iters_per_epoch=ctx.max_iters_per_epoch, channels_last=ctx.channels_last, **trainer_kwargs)
    if ctx.resume:
        trainer.resume()
        if ctx.lr_milestones:
            trainer.set_lr_milestones(ctx.lr_milestones)
    try:
        return trainer.run(ctx.epochs or num_epochs)
    finally:
        trainer.close()


def load_initial_weights(model, path) -> None:
    """Start a run from the weights of ``path`` (``{'state_dict': ...}`` as ``train.py`` writes it, or a
    bare state_dict); every key must match the recipe's model (CheckpointError otherwise)."""
    from isegm.errors import CheckpointError
    from isegm.model.checkpoint import load_state_dict_checked, read_checkpoint, state_dict_of
    state = state_dict_of(read_checkpoint(path))
    if state is None:
        raise CheckpointError(f'--weights: {path} holds no state_dict')
    load_state_dict_checked(model, state, str(path), target="this recipe's model")
    logger.info('initial weights from %s', path)


def load_imagenet(model, ctx: RunContext, key: Optional[str] = None) -> None:
    """ImageNet initialisation of ``model.feature_extractor`` from ``IMAGENET_PRETRAINED_MODELS[key]``
    (or the model's own default source); skipped with a warning when unavailable."""
    if not ctx.pretrained:
        return
    fe = getattr(model, 'feature_extractor', model)
    loader = getattr(model, 'load_pretrained_weights', None) or getattr(fe, 'load_pretrained_weights', None)
    path = (ctx.paths.get('IMAGENET_PRETRAINED_MODELS') or {}).get(key) if key else None
    if loader is None:
        logger.warning('%s has no load_pretrained_weights: training from scratch', type(model).__name__)
        return
    if key and path is None:
        logger.warning('IMAGENET_PRETRAINED_MODELS.%s is not set in config.yml: training from scratch', key)
        return
    loader(path) if path else loader()


def cocolvis_sets(ctx: RunContext, points_sampler, crop_size: Tuple[int, int] = (320, 480)):
    """RITM's COCO+LVIS train/val sets (``LVIS_v1_PATH``): min object area 1000, 5% background crops,
    30% stuff, 30000 train / 2000 val samples per epoch."""
    from isegm.data.datasets.coco_lvis import CocoLvisDataset
    from isegm.data.transforms import click_train_augmentator, click_val_augmentator
    root = ctx.path('LVIS_v1_PATH')
    trainset = CocoLvisDataset(root, 'train', augmentator=click_train_augmentator(crop_size), min_object_area=1000,
                               keep_background_prob=0.05, points_sampler=points_sampler,
                               epoch_len=ctx.epoch_len or 30000, stuff_prob=0.30)
    valset = CocoLvisDataset(root, 'val', augmentator=click_val_augmentator(crop_size), min_object_area=1000,
                             points_sampler=points_sampler, epoch_len=2000)
    return trainset, valset


def ritm_cocolvis_recipe(ctx: RunContext, model, imagenet_key: Optional[str], batch_size: int,
                         max_num_next_clicks: int = 3, num_epochs: int = 230) -> None:
    """Train a RITM model as the official COCO+LVIS configs do (crop 320x480, 24 clicks max,
    Adam 5e-4, MultiStepLR [200, 215], 230 epochs)."""
    from isegm.data.points_sampler import MultiPointSampler
    load_imagenet(model, ctx, imagenet_key)
    sampler = MultiPointSampler(24, prob_gamma=0.80, merge_objects_prob=0.15, max_num_merged_objects=2)
    trainset, valset = cocolvis_sets(ctx, sampler)
    run_click_training(ctx, model, trainset, num_epochs, batch_size, milestones=[200, 215], lr=5e-4,
                       valset=valset, max_num_next_clicks=max_num_next_clicks,
                       info={'training_data': 'COCO+LVIS', 'recipe': type(model).__name__})
