"""NoC evaluation: IoU, the click-by-click protocol, NoC / NoF / mIoU figures, dataset loop."""
from dataclasses import dataclass

import cv2
import numpy as np
import pytest

from isegm.errors import InputError
from isegm.inference.evaluation import (compute_noc_metric, evaluate_dataset, evaluate_sample, get_iou, pad_ious,
                                        summarize)
from isegm.inference.predictors import BasePredictor
from tests.inference.tiny_model import make_image, make_tiny_model


class DiskPredictor:
    """A trivial but real interactive segmenter: disks of radius ``r`` around positive clicks, minus disks
    around negative clicks (later clicks win). Implements the predictor interface the protocol uses."""

    def __init__(self, radius):
        self.radius = radius
        self.shape = None

    def set_input_image(self, image):
        self.shape = image.shape[:2]

    def get_prediction(self, clicker):
        prob = np.zeros(self.shape, np.float32)
        for click in clicker.get_clicks():
            disk = np.zeros(self.shape, np.uint8)
            cv2.circle(disk, (int(click.coords[1]), int(click.coords[0])), self.radius, 1, -1)
            prob[disk > 0] = 1.0 if click.is_positive else 0.0
        return prob


def _disk_gt(h=60, w=80, centre=(30, 40), radius=10):
    gt = np.zeros((h, w), np.uint8)
    cv2.circle(gt, (centre[1], centre[0]), radius, 1, -1)
    return gt.astype(np.int32)


def test_get_iou_with_ignore_region():
    gt = np.array([[1, 1, 0, -1]], np.int32)
    assert get_iou(gt, np.array([[1, 0, 0, 1]], bool)) == pytest.approx(0.5)       # ignored pixel excluded
    assert get_iou(gt, np.array([[1, 1, 1, 0]], bool)) == pytest.approx(2 / 3)
    assert get_iou(np.zeros((2, 2), np.int32), np.zeros((2, 2), bool)) == 1.0


def test_evaluate_sample_stops_when_threshold_reached():
    gt = _disk_gt()
    calls = []
    clicks, ious, probs = evaluate_sample(np.zeros((60, 80, 3), np.uint8), gt, DiskPredictor(10), max_iou_thr=0.9,
                                          callback=lambda *a: calls.append(a))
    assert len(clicks) == 1 and clicks[0].is_positive and clicks[0].coords == (30, 40)
    assert ious.dtype == np.float32 and ious.tolist() == [1.0]
    assert probs.shape == gt.shape
    assert len(calls) == 1 and calls[0][4] == 0 and calls[0][5] is not None


def test_evaluate_sample_min_and_max_clicks():
    gt = _disk_gt()
    clicks, ious, _ = evaluate_sample(np.zeros((60, 80, 3), np.uint8), gt, DiskPredictor(10), max_iou_thr=0.9,
                                      min_clicks=3)
    assert len(ious) == 3 and len(clicks) == 3
    assert not clicks[1].is_positive and clicks[1].coords == (0, 0)   # perfect mask: negative click at (0, 0)
    # too small disks never reach 0.99 -> max_clicks clicks, IoU improving with the clicks
    clicks, ious, _ = evaluate_sample(np.zeros((60, 80, 3), np.uint8), gt, DiskPredictor(3), max_iou_thr=0.99,
                                      max_clicks=5)
    assert len(ious) == 5 and all(c.is_positive for c in clicks)
    assert ious[-1] > ious[0]


def test_evaluate_sample_ignores_ignore_label():
    gt = _disk_gt()
    gt[:, 60:] = -1
    _, ious, _ = evaluate_sample(np.zeros((60, 80, 3), np.uint8), gt, DiskPredictor(10), max_iou_thr=0.9)
    assert ious.tolist() == [1.0]


def test_evaluate_sample_checks_shapes():
    with pytest.raises(InputError, match='same height and width'):
        evaluate_sample(np.zeros((10, 10, 3), np.uint8), np.zeros((10, 11), np.int32), DiskPredictor(3), 0.9)


def test_evaluate_sample_with_real_predictor():
    image = make_image(48, 64)
    gt = _disk_gt(48, 64, (24, 30), 12)
    predictor = BasePredictor(make_tiny_model(with_prev_mask=True), 'cpu', with_flip=True)
    clicks, ious, probs = evaluate_sample(image, gt, predictor, max_iou_thr=1.01, max_clicks=3)
    assert len(clicks) == 3 and ious.shape == (3,) and ious.dtype == np.float32
    assert probs.shape == (48, 64) and probs.dtype == np.float32 and 0 <= probs.min() <= probs.max() <= 1
    assert [c.indx for c in clicks] == [0, 1, 2]


def test_compute_noc_metric():
    all_ious = [np.array([0.5, 0.86, 0.91]), np.array([0.95]), np.array([0.1] * 20),
                np.array([0.1] * 19 + [0.9])]
    noc, nof = compute_noc_metric(all_ious, [0.85, 0.90], max_clicks=20)
    assert noc == pytest.approx([(2 + 1 + 20 + 20) / 4, (3 + 1 + 20 + 20) / 4])
    assert nof == [2, 2]      # reaching the threshold only at click 20 counts as >= 20 (as RITM)
    noc, nof = compute_noc_metric([np.array([0.2, 0.3])], [0.5], max_clicks=5)
    assert noc == [5] and nof == [1]


def test_pad_ious_and_summarize():
    all_ious = [np.array([0.5, 0.86, 0.91], np.float32), np.array([0.95], np.float32)]
    padded = pad_ious(all_ious, 6)
    assert padded.shape == (2, 6)
    np.testing.assert_allclose(padded[0], [0.5, 0.86, 0.91, 0.91, 0.91, 0.91])
    np.testing.assert_allclose(padded[1], [0.95] * 6)
    s = summarize(all_ious, max_clicks=20, elapsed_time=8.0)
    assert s['NoC@85'] == pytest.approx(1.5) and s['NoC@90'] == pytest.approx(2.0)
    assert s['NoF@85'] == 0 and s['NoF@90'] == 0 and s['num_samples'] == 2
    assert s['mIoU@1'] == pytest.approx(0.725) and s['mIoU@5'] == pytest.approx(0.93)
    assert s['SPC'] == pytest.approx(2.0) and s['SPI'] == pytest.approx(4.0)
    assert 'SPC' not in summarize(all_ious)


@dataclass
class _Sample:
    image: np.ndarray
    gt_mask: np.ndarray


class _ListDataset:
    def __init__(self, samples):
        self.samples = samples

    def __len__(self):
        return len(self.samples)

    def get_sample(self, index):
        return self.samples[index]


def test_evaluate_dataset():
    ds = _ListDataset([_Sample(np.zeros((60, 80, 3), np.uint8), _disk_gt()),
                       _Sample(np.zeros((60, 80, 3), np.uint8), _disk_gt(radius=20))])
    all_ious, elapsed, spc = evaluate_dataset(ds, DiskPredictor(10), max_iou_thr=0.9, max_clicks=4)
    assert len(all_ious) == 2 and all_ious[0].tolist() == [1.0] and 1 <= len(all_ious[1]) <= 4
    assert elapsed >= 0 and len(spc) == 2 and all(t >= 0 for t in spc)
    with pytest.raises(InputError, match='max_iou_thr'):
        evaluate_dataset(ds, DiskPredictor(10))


def test_evaluate_dataset_on_grabcut(datasets_dir):
    eval_sets = pytest.importorskip('isegm.data.datasets.eval_sets')
    ds = eval_sets.GrabCutDataset(datasets_dir / 'GrabCut', max_samples=1)
    sample = ds.get_sample(0)
    small = type(sample)(image=cv2.resize(sample.image, (120, 90), interpolation=cv2.INTER_AREA),
                         gt_mask=cv2.resize(sample.gt_mask, (120, 90), interpolation=cv2.INTER_NEAREST),
                         name=sample.name)
    predictor = BasePredictor(make_tiny_model(with_prev_mask=True), 'cpu')
    all_ious, elapsed, spc = evaluate_dataset(_ListDataset([small]), predictor, max_iou_thr=0.9, max_clicks=2)
    assert len(all_ious) == 1 and 1 <= len(all_ious[0]) <= 2
    assert ((0 <= all_ious[0]) & (all_ious[0] <= 1)).all()


def test_eval_set_on_a_malformed_folder_raises_isegm_errors(tmp_path):
    from PIL import Image
    from isegm.data.datasets.eval_sets import GrabCutDataset
    from isegm.errors import ImageLoadError, IsegmError
    (tmp_path / GrabCutDataset.images_dir).mkdir()
    with pytest.raises(IsegmError, match=GrabCutDataset.masks_dir):   # FileNotFoundError before
        GrabCutDataset(tmp_path)
    (tmp_path / GrabCutDataset.masks_dir).mkdir()
    Image.fromarray(make_image(20, 30)).save(tmp_path / GrabCutDataset.images_dir / 'a.jpg')
    (tmp_path / GrabCutDataset.masks_dir / 'a.bmp').write_bytes(b'')   # PIL's UnidentifiedImageError before
    with pytest.raises(ImageLoadError, match='a.bmp'):
        GrabCutDataset(tmp_path).get_sample(0)
