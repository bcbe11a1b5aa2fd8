"""The bundled default models: ``isegm.load_model()`` (click) and ``isegm.load_model(task='extreme')``
load them from weights/ and segment real benchmark images far better than chance.
Skipped when the weight files have not been exported (see docs/training.md)."""
from pathlib import Path

import numpy as np
import pytest

import isegm
from isegm.data.datasets.eval_sets import get_eval_dataset
from isegm.inference.evaluation import evaluate_sample, get_iou
from isegm.inference.predictors import get_predictor
from isegm.inference.predictors.extreme import ExtremePointsPredictor
from isegm.model import zoo
from isegm.model.is_compact_model import CompactClickModel, CompactExtremeModel
from isegm.utils.extreme_geometry import extreme_points_from_mask

WEIGHTS = Path(__file__).resolve().parents[2] / 'weights'
N_IMAGES = 6


def _weights(task):
    path = WEIGHTS / zoo.get(zoo.default_model_name(task)).file
    if not path.is_file():
        pytest.skip(f'{path.name} is not exported (scripts/export_bundled.py)')
    return path


def _chance_iou(gt):
    """IoU of the best trivial answer: the whole image."""
    return float((gt == 1).sum() / max((gt != -1).sum(), 1))


@pytest.fixture(scope='module')
def grabcut(datasets_dir):
    return get_eval_dataset('GrabCut', {'GRABCUT_PATH': datasets_dir / 'GrabCut'}, max_samples=N_IMAGES)


def test_defaults_are_registered_and_bundled():
    for task, cls in (('click', 'isegm_compact_click'), ('extreme', 'isegm_compact_extreme')):
        entry = zoo.get(zoo.default_model_name(task))
        assert entry.name == cls and entry.task == task and entry.bundled
        assert entry.file.endswith('_bundled.pth')


def _auc(prob, gt, rng):
    """Probability that an object pixel scores above a background pixel (ignored pixels left out)."""
    obj = rng.choice(prob[gt == 1], 4000)
    bg = rng.choice(prob[gt == 0], 4000)
    return float((obj[:, None] > bg[None, :]).mean() + 0.5 * (obj[:, None] == bg[None, :]).mean())


def test_default_click_model_separates_object_after_one_click(grabcut):
    """After the oracle's first click the shipped model's probability map ranks the object's pixels above
    the background's (AUC), far from the 0.5 of an untrained or constant model."""
    path = _weights('click')
    assert path.stat().st_size <= 20 * 2 ** 20
    model, info = isegm.load_model(return_info=True)
    assert isinstance(model, CompactClickModel) and Path(info['path']).name == path.name
    assert info['info']['epochs_trained'] >= 1 and 'training_data' in info['info']
    predictor = get_predictor(model, 'NoBRS', 'cpu')
    rng = np.random.default_rng(0)
    aucs = []
    for i in range(len(grabcut)):
        s = grabcut.get_sample(i)
        _, _, prob = evaluate_sample(s.image, s.gt_mask, predictor, max_iou_thr=1.01, max_clicks=1)
        assert prob.shape == s.gt_mask.shape and 0 <= prob.min() and prob.max() <= 1
        aucs.append(_auc(prob, s.gt_mask, rng))
    assert min(aucs) >= 0.6 and np.mean(aucs) >= 0.8, aucs


def test_default_click_model_improves_with_corrective_clicks(grabcut):
    """Five oracle clicks (ITER-M, ZoomIn, flip, as scripts/evaluate_model.py): the masks get close to the
    objects (measured on these images: mean IoU 0.75 after 5 clicks; an untrained model stays near chance)
    and every image gains from the corrections."""
    model = isegm.load_model()
    predictor = get_predictor(model, 'NoBRS', 'cpu', zoom_in_params={'target_size': 400})
    first, fifth = [], []
    for i in range(len(grabcut)):
        s = grabcut.get_sample(i)
        _, ious, _ = evaluate_sample(s.image, s.gt_mask, predictor, max_iou_thr=1.01, max_clicks=5)
        first.append(ious[0])
        fifth.append(ious[-1])
    assert np.mean(fifth) >= 0.65, fifth
    assert np.mean(fifth) >= np.mean(first) + 0.2 and all(b > a for a, b in zip(first, fifth)), (first, fifth)


def test_default_extreme_model_segments_from_four_points(grabcut):
    path = _weights('extreme')
    assert path.stat().st_size <= 20 * 2 ** 20
    model = isegm.load_model(task='extreme')
    assert isinstance(model, CompactExtremeModel)
    predictor = ExtremePointsPredictor(model)
    assert predictor.input_size == model.input_size
    assert predictor.pad == model.crop_pad == 30   # the box relaxation of its recipe, not DEXTR's 50
    ious, chance = [], []
    for i in range(len(grabcut)):
        s = grabcut.get_sample(i)
        prob = predictor.predict(s.image, extreme_points_from_mask(s.gt_mask == 1))
        ious.append(get_iou(s.gt_mask, prob > 0.5))
        chance.append(_chance_iou(s.gt_mask))
    assert np.mean(ious) >= 0.6, ious
    assert np.mean(ious) >= np.mean(chance) + 0.25, (ious, chance)
