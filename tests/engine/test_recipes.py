"""Every training recipe under ``models/`` really trains: ``main(ctx)`` on tiny generated copies of the
dataset layouts it reads (one step of batch 2, one validation batch), then the checkpoint it wrote loads
with ``isegm.load_model`` as the recipe's class and holds weights that moved away from their
initialisation. Plus the smoke-run limit on validation (``max_iters_per_epoch``) for both trainers."""
import json
import math
import pickle
import random
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

import isegm
from isegm.engine.recipe_utils import RunContext, ritm_loss_cfg
from isegm.utils.serialization import build_from_config
from tests.engine.tiny import ShapesDataset, TinyClickModel

ROOT = Path(__file__).resolve().parents[2]
TRAIN_POOL = ROOT.parent / 'shared' / 'datasets' / 'train'


# -- tiny datasets in the recipes' layouts -------------------------------------------------------------
def _scene(rng, h, w, boxes):
    """Noisy dark image with bright boxes ``(y0, y1, x0, x1)``."""
    img = rng.integers(0, 70, (h, w, 3)).astype(np.uint8)
    for y0, y1, x0, x1 in boxes:
        img[y0:y1, x0:x1] = rng.integers(150, 255, 3)
    return img


def make_cocolvis_packed(root: Path, n_images: int = 2, h: int = 200, w: int = 300) -> Path:
    """RITM's packed COCO+LVIS layout (``LVIS_v1_PATH``): per split ``images/<id>.jpg``,
    ``masks/<id>.pickle`` = (PNG-encoded layers, [(layer, id)]) and ``hannotation.pickle``; two things
    (>= 1000 px after the 0.75 down-scaling of the augmentation) and one stuff region per image."""
    rng = np.random.default_rng(0)
    for split in ('train', 'val'):
        (root / split / 'images').mkdir(parents=True)
        (root / split / 'masks').mkdir()
        anno = {}
        for k in range(n_images):
            boxes = [(20 + 10 * k, 80 + 10 * k, 20, 90), (100, 160, 150 - 10 * k, 240 - 10 * k)]
            Image.fromarray(_scene(rng, h, w, boxes)).save(root / split / 'images' / f'{k + 1}.jpg')
            things, stuff = np.zeros((h, w), np.uint8), np.zeros((h, w), np.uint8)
            for i, (y0, y1, x0, x1) in enumerate(boxes):
                things[y0:y1, x0:x1] = i + 1
            stuff[170:200, :] = 1
            layers = [cv2.imencode('.png', things)[1], cv2.imencode('.png', stuff)[1]]
            with open(root / split / 'masks' / f'{k + 1}.pickle', 'wb') as f:
                pickle.dump((layers, [(0, 1), (0, 2), (1, 1)]), f)
            anno[k + 1] = {'num_instance_masks': 2, 'hierarchy': {}}
        with open(root / split / 'hannotation.pickle', 'wb') as f:
            pickle.dump(anno, f)
    return root


def make_pascal_voc(root: Path, h: int = 60, w: int = 80) -> Path:
    """VOC 2012 layout: two train images and one val image, two objects (>= 400 px) each, 255 borders."""
    rng = np.random.default_rng(1)
    for d in ('JPEGImages', 'SegmentationObject', 'ImageSets/Segmentation'):
        (root / d).mkdir(parents=True)
    names = ['2008_000001', '2008_000002', '2008_000003']
    for k, name in enumerate(names):
        boxes = [(5, 30, 5 + 3 * k, 35 + 3 * k), (30, 55, 45, 75)]
        Image.fromarray(_scene(rng, h, w, boxes)).save(root / 'JPEGImages' / f'{name}.jpg')
        lab = np.zeros((h, w), np.uint8)
        for i, (y0, y1, x0, x1) in enumerate(boxes):
            lab[y0 - 1:y1 + 1, x0 - 1:x1 + 1] = 255
            lab[y0:y1, x0:x1] = i + 1
        im = Image.fromarray(lab, mode='P')
        im.putpalette([0, 0, 0, 128, 0, 0, 0, 128, 0] + [0] * 759)
        im.save(root / 'SegmentationObject' / f'{name}.png')
    (root / 'ImageSets/Segmentation/train.txt').write_text('\n'.join(names[:2]) + '\n')
    (root / 'ImageSets/Segmentation/val.txt').write_text(names[2] + '\n')
    return root


def make_sbd(root: Path, h: int = 60, w: int = 80) -> Path:
    """RITM's SBD layout: ``img/<id>.jpg``, ``inst/<id>.mat`` (GTinst.Segmentation), ``train.txt``."""
    from scipy.io import savemat
    rng = np.random.default_rng(2)
    (root / 'img').mkdir(parents=True), (root / 'inst').mkdir()
    boxes = [(10, 40, 10, 40), (35, 58, 50, 78)]
    Image.fromarray(_scene(rng, h, w, boxes)).save(root / 'img' / '2008_000010.jpg')
    inst = np.zeros((h, w), np.uint8)
    for i, (y0, y1, x0, x1) in enumerate(boxes):
        inst[y0:y1, x0:x1] = i + 1
    dt = np.dtype([('Segmentation', 'O'), ('Boundaries', 'O'), ('Categories', 'O')])
    gtinst = np.array([(inst, np.zeros(1), np.array([[15], [3]]))], dtype=dt).reshape(1, 1)
    savemat(root / 'inst' / '2008_000010.mat', {'GTinst': gtinst})
    (root / 'train.txt').write_text('2008_000010\n')
    return root


# -- the recipes ---------------------------------------------------------------------------------------
def _load_recipe(rel: str):
    from train import load_recipe   # the loader train.py itself uses
    return load_recipe(ROOT / 'models' / rel)


RECIPES = [
    # recipe, expected class, datasets it reads
    ('iter_mask/hrnet18s_cocolvis_itermask_3p.py', 'HRNetModel', 'cocolvis'),
    ('iter_mask/hrnet18_cocolvis_itermask_3p.py', 'HRNetModel', 'cocolvis'),
    ('iter_mask/hrnet32_cocolvis_itermask_3p.py', 'HRNetModel', 'cocolvis'),
    ('noniterative_baselines/hrnet18_ocr64_cocolvis.py', 'HRNetModel', 'cocolvis'),
    ('noniterative_baselines/r34_dh128_cocolvis.py', 'DeeplabModel', 'cocolvis'),
    ('dextr/dextr_resnet101_pascal.py', 'DextrModel', 'pascal'),
    ('compact/efflite0_click_itermask.py', 'CompactClickModel', 'pool'),
    ('compact/efflite0_extreme.py', 'CompactExtremeModel', 'pool'),
]


def test_every_recipe_is_covered():
    found = sorted(str(p.relative_to(ROOT / 'models')) for p in (ROOT / 'models').glob('*/*.py')
                   if p.name != '__init__.py')
    assert found == sorted(r for r, _, _ in RECIPES)


@pytest.mark.parametrize('recipe, class_name, data', RECIPES, ids=[Path(r[0]).stem for r in RECIPES])
def test_recipe_trains_and_writes_loadable_checkpoint(recipe, class_name, data, tmp_path):
    paths = {}
    if data == 'cocolvis':
        paths['LVIS_v1_PATH'] = make_cocolvis_packed(tmp_path / 'cocolvis')
    elif data == 'pascal':
        paths['PASCALVOC_PATH'] = make_pascal_voc(tmp_path / 'VOC2012')
        paths['SBD_PATH'] = make_sbd(tmp_path / 'SBD')
    else:
        if not TRAIN_POOL.is_dir():
            pytest.skip(f'the shared training pool {TRAIN_POOL} is absent')
        paths['TRAIN_POOL_PATH'] = TRAIN_POOL
    exp = tmp_path / 'exp'
    ctx = RunContext(exp_path=exp, paths=paths, batch_size=2, workers=0, device='cpu', epochs=1,
                     max_iters_per_epoch=1, epoch_len=4, pretrained=False)
    module = _load_recipe(recipe)
    random.seed(0), np.random.seed(0), torch.manual_seed(0)
    module.main(ctx)

    ckpt_path = exp / 'checkpoints' / 'last_checkpoint.pth'
    assert ckpt_path.is_file() and (exp / 'checkpoints' / '000.pth').is_file()
    model = isegm.load_model(ckpt_path)
    assert type(model).__name__ == class_name
    assert not model.training

    stats = [json.loads(line) for line in (exp / 'metrics.jsonl').read_text().splitlines()]
    assert len(stats) == 1 and stats[0]['epoch'] == 0
    assert math.isfinite(stats[0]['train_loss']) and stats[0]['train_loss'] > 0
    assert any(k.startswith('val_') for k in stats[0]), stats[0]   # validation ran (one batch / sample)

    # exactly one Adam step from the recipe's own initialisation (rebuilt from the same seed): nearly every
    # parameter moved, and none by more than the learning rate (Adam's first step is lr * g / (|g| + eps))
    ckpt = torch.load(ckpt_path, map_location='cpu', weights_only=True)
    torch.manual_seed(0)
    fresh = build_from_config(ckpt['config'], {ckpt['config']['class']: type(model)})
    init = dict(fresh.named_parameters())
    assert set(init) <= set(ckpt['state_dict'])
    assert all(torch.isfinite(v).all() for v in ckpt['state_dict'].values() if v.is_floating_point())
    delta = {k: (ckpt['state_dict'][k] - v.detach()).abs().max().item() for k, v in init.items()}
    moved = [k for k, d in delta.items() if d > 0]
    assert len(moved) >= 0.9 * len(init), f'{len(moved)} of {len(init)} parameters changed'
    assert max(delta.values()) <= 1.01 * stats[0]['lr'] + 1e-6, max(delta.items(), key=lambda kv: kv[1])


# -- validation honours max_iters_per_epoch ------------------------------------------------------------
class _Counting(ShapesDataset):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.reads = 0

    def get_sample(self, index):
        self.reads += 1
        return super().get_sample(index)


def test_click_validation_stops_after_max_iters_per_epoch(tmp_path):
    from isegm.engine.trainer import ISTrainer
    valset = _Counting(12, seed=3)
    samples = [(s.image, s.masks[:, :, 0] > 0, None) for s in valset.dataset_samples]
    model = TinyClickModel(use_disks=True, norm_radius=3, with_prev_mask=True, use_rgb_conv=False)
    kw = dict(valset=valset, val_samples=samples, val_kwargs={'max_clicks': 2}, batch_size=2, workers=0,
              device='cpu', progress=False, max_num_next_clicks=1)
    trainer = ISTrainer(model, ShapesDataset(4), ritm_loss_cfg(0), tmp_path / 'a', max_iters_per_epoch=2, **kw)
    stats = trainer.validation(0)
    trainer.close()
    assert valset.reads == 4 and 'val_loss' in stats and 'val_NoC@90' in stats
    valset.reads = 0
    trainer = ISTrainer(model, ShapesDataset(4), ritm_loss_cfg(0), tmp_path / 'b', **kw)
    trainer.validation(0)
    trainer.close()
    assert valset.reads == 12


def test_extreme_validation_stops_after_max_iters_per_epoch(tmp_path):
    from isegm.data.extreme_points import ExtremePointsDataset
    from isegm.engine.extreme_trainer import ExtremeTrainer
    from isegm.model.losses import ClassBalancedBCELoss
    reader = _Counting(10, seed=4)
    valset = ExtremePointsDataset(reader, resolution=32, relax=4, sigma=3, pert=0, min_object_area=0,
                                  augment=False)
    model = nn.Conv2d(4, 1, 3, padding=1)
    kw = dict(valset=valset, batch_size=3, workers=0, device='cpu', progress=False, max_num_next_clicks=0)
    loss = {'instances': (ClassBalancedBCELoss(), 1.0)}
    trainer = ExtremeTrainer(model, valset, loss, tmp_path / 'a', max_iters_per_epoch=1, **kw)
    stats = trainer.validation(0)
    trainer.close()
    assert reader.reads == 3 and 0.0 <= stats['val_mIoU'] <= 1.0
    reader.reads = 0
    trainer = ExtremeTrainer(model, valset, loss, tmp_path / 'b', **kw)
    trainer.validation(0)
    trainer.close()
    assert reader.reads == 10
