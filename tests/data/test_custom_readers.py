"""Every custom training reader on small files written by the test."""
import json

import numpy as np
import pytest
from PIL import Image

from isegm.data.datasets.custom import (BSDSDataset, CocoJsonDataset, LabelFolderDataset, MaskStackDataset,
                                        YoloSegDataset)


def _image(path, h=40, w=60, seed=0):
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 255, (h, w, 3)).astype(np.uint8)
    Image.fromarray(img).save(path)
    return img


def _areas(sample):
    return sorted(int(sample.masks[:, :, k].sum()) for k in range(sample.num_objects))


def test_label_folder_objects_ignore_and_16bit(tmp_path):
    (tmp_path / 'img').mkdir(), (tmp_path / 'lab').mkdir()
    img = _image(tmp_path / 'img' / 'a.jpg')
    lab = np.zeros((40, 60), np.uint8)
    lab[0:10, 0:10] = 1
    lab[20:30, 20:40] = 7
    lab[35:40, :] = 255
    Image.fromarray(lab).save(tmp_path / 'lab' / 'a.png')
    _image(tmp_path / 'img' / 'b.png', seed=1)
    lab16 = np.zeros((40, 60), np.uint16)
    lab16[5:15, 5:25] = 300
    lab16[20:22, 0:3] = 1000
    Image.fromarray(lab16).save(tmp_path / 'lab' / 'b.png')
    _image(tmp_path / 'img' / 'unpaired.jpg')
    ds = LabelFolderDataset(tmp_path / 'img', tmp_path / 'lab')
    assert [p[0].stem for p in ds.dataset_samples] == ['a', 'b']
    a = ds.get_sample(0)
    assert a.image.shape == (40, 60, 3) and _areas(a) == [100, 200]
    assert a.ignore.sum() == 5 * 60
    b = ds.get_sample(1)
    assert _areas(b) == [6, 200] and not b.ignore.any()
    item = ds[0]
    assert item['instances'].shape == (1, 40, 60) and (item['instances'] == -1).sum() == 300
    assert item['points'].shape == (24, 3)


def test_label_folder_binary_masks(tmp_path):
    (tmp_path / 'img').mkdir(), (tmp_path / 'gt').mkdir()
    _image(tmp_path / 'img' / 'cat1_9.jpg')
    gt = np.zeros((40, 60), np.uint8)
    gt[10:20, 10:30] = 255
    Image.fromarray(gt).save(tmp_path / 'gt' / 'cat1_9.png')
    s = LabelFolderDataset(tmp_path / 'img', tmp_path / 'gt', binary=True).get_sample(0)
    assert _areas(s) == [200] and s.ignore is None


def test_mask_stack(tmp_path):
    _image(tmp_path / 'img0.jpg')
    for k, sl in enumerate([np.s_[0:10, 0:10], np.s_[20:30, 30:50]]):
        m = np.zeros((40, 60), np.uint8)
        m[sl] = 255
        Image.fromarray(m).save(tmp_path / f'img0_mask{k}.png')
    _image(tmp_path / 'img1.jpg')  # no masks -> not a sample
    ds = MaskStackDataset(tmp_path)
    assert len(ds.dataset_samples) == 1 and len(ds.dataset_samples[0][1]) == 2
    assert _areas(ds.get_sample(0)) == [100, 200]


def test_coco_json_polygons_rle_and_crowd(tmp_path):
    from pycocotools import mask as mask_utils
    _image(tmp_path / 'x.jpg')
    rle_mask = np.zeros((40, 60), np.uint8, order='F')
    rle_mask[30:35, 40:50] = 1
    rle = mask_utils.encode(np.asfortranarray(rle_mask))
    rle['counts'] = rle['counts'].decode('ascii')
    crowd = np.zeros((40, 60), np.uint8)
    crowd[0:5, 50:60] = 1
    crowd_rle = mask_utils.encode(np.asfortranarray(crowd))
    crowd_rle['counts'] = crowd_rle['counts'].decode('ascii')
    data = {'images': [{'id': 1, 'file_name': 'x.jpg', 'height': 40, 'width': 60},
                       {'id': 2, 'file_name': 'none.jpg', 'height': 40, 'width': 60}],
            'annotations': [
                {'id': 1, 'image_id': 1, 'category_id': 1, 'iscrowd': 0,
                 'segmentation': [[10, 10, 29, 10, 29, 19, 10, 19]]},
                {'id': 2, 'image_id': 1, 'category_id': 1, 'iscrowd': 0, 'segmentation': rle},
                {'id': 3, 'image_id': 1, 'category_id': 1, 'iscrowd': 1, 'segmentation': crowd_rle}]}
    (tmp_path / 'ann.json').write_text(json.dumps(data))
    ds = CocoJsonDataset(tmp_path, tmp_path / 'ann.json')
    assert len(ds.dataset_samples) == 1
    s = ds.get_sample(0)
    assert s.num_objects == 2
    areas = _areas(s)
    assert areas[0] == 50 and 190 <= areas[1] <= 210
    assert s.ignore.sum() == 50


def test_yolo_segmentation(tmp_path):
    (tmp_path / 'images').mkdir(), (tmp_path / 'labels').mkdir()
    _image(tmp_path / 'images' / 'q.jpg', h=40, w=80)
    (tmp_path / 'labels' / 'q.txt').write_text(
        '0 0.0 0.0 0.5 0.0 0.5 0.5 0.0 0.5\n3 0.75 0.5 1.0 0.5 1.0 1.0 0.75 1.0\n')
    ds = YoloSegDataset(tmp_path / 'images', tmp_path / 'labels')
    s = ds.get_sample(0)
    assert s.num_objects == 2
    assert s.masks[5, 5, :].sum() == 1 and s.masks[30, 70, :].sum() == 1 and s.masks[30, 5, :].sum() == 0
    only3 = YoloSegDataset(tmp_path / 'images', tmp_path / 'labels', classes=[3]).get_sample(0)
    assert only3.num_objects == 1 and only3.masks[30, 70, 0] == 1


def test_bsds_region_maps_including_a_rotated_one(tmp_path):
    (tmp_path / 'images').mkdir(), (tmp_path / 'gt').mkdir()
    img = np.zeros((40, 60, 3), np.uint8)
    img[:, 30:] = 255  # two regions: left / right halves
    Image.fromarray(img).save(tmp_path / 'images' / '1.png')
    lab = np.zeros((40, 60), np.uint8)
    lab[:, 30:] = 1
    Image.fromarray(lab).save(tmp_path / 'gt' / '1_0.png')
    lab2 = np.zeros((40, 60), np.uint16)
    lab2[:, 30:] = 2
    lab2[:20, :30] = 1
    Image.fromarray(np.rot90(lab2, 3).copy()).save(tmp_path / 'gt' / '1_1.png')  # stored turned
    ds = BSDSDataset(tmp_path / 'images', tmp_path / 'gt', annotator=0)
    assert len(ds.dataset_samples) == 1
    assert _areas(ds.get_sample(0)) == [1200, 1200]  # region 0 is an object too
    ds1 = BSDSDataset(tmp_path / 'images', tmp_path / 'gt', annotator=1)
    s = ds1.get_sample(0)
    assert s.image.shape[:2] == s.masks.shape[:2] and _areas(s) == [600, 600, 1200]
    right = [k for k in range(3) if s.masks[:, 30:, k].all()]
    assert len(right) == 1


def test_overlapping_polygons_of_one_object_are_united():
    """COCO segmentations with several polygons: the union, as pycocotools (not even-odd cancellation)."""
    from isegm.data.datasets._common import polygons_to_mask
    a = np.array([[0, 0], [9, 0], [9, 9], [0, 9]], np.float64)       # 10 x 10
    b = a + 5                                                          # overlaps a on 5 x 5
    mask = polygons_to_mask([a, b], 20, 20)
    assert mask.sum() == 100 + 100 - 25
    assert mask[7, 7] and mask[12, 12] and not mask[2, 12]


def test_malformed_coco_and_yolo_files_raise_isegm_errors(tmp_path):
    from isegm.errors import IsegmError
    _image(tmp_path / 'x.jpg')
    (tmp_path / 'empty.json').write_text('')                          # JSONDecodeError before
    with pytest.raises(IsegmError, match='cannot read COCO'):
        CocoJsonDataset(tmp_path, tmp_path / 'empty.json')
    (tmp_path / 'boxes.json').write_text(json.dumps({               # KeyError 'segmentation' before
        'images': [{'id': 1, 'file_name': 'x.jpg', 'height': 40, 'width': 60}],
        'annotations': [{'id': 5, 'image_id': 1, 'bbox': [0, 0, 5, 5]}]}))
    with pytest.raises(IsegmError, match='segmentation'):
        CocoJsonDataset(tmp_path, tmp_path / 'boxes.json')
    (tmp_path / 'mixed.json').write_text(json.dumps({               # box-only annotations beside masks: skipped
        'images': [{'id': 1, 'file_name': 'x.jpg', 'height': 40, 'width': 60},
                   {'id': 2, 'file_name': 'x.jpg', 'height': 40, 'width': 60}],
        'annotations': [{'id': 5, 'image_id': 1, 'bbox': [0, 0, 5, 5]},
                        {'id': 6, 'image_id': 2, 'bbox': [0, 0, 5, 5], 'segmentation': []},
                        {'id': 7, 'image_id': 2, 'segmentation': [[10, 10, 29, 10, 29, 19, 10, 19]]}]}))
    mixed = CocoJsonDataset(tmp_path, tmp_path / 'mixed.json')
    assert len(mixed.dataset_samples) == 1 and mixed.get_sample(0).masks.shape[2] == 1
    (tmp_path / 'images').mkdir(), (tmp_path / 'labels').mkdir()
    _image(tmp_path / 'images' / 'q.jpg')
    (tmp_path / 'labels' / 'q.txt').write_text('0 0.1 0.1 0.5 zero 0.5 0.5\n')   # ValueError before
    with pytest.raises(IsegmError, match='q.txt'):
        YoloSegDataset(tmp_path / 'images', tmp_path / 'labels').get_sample(0)


@pytest.mark.parametrize('image_entry, annotation, message', [
    ({'id': 1, 'file_name': 'x.jpg'}, {'id': 7, 'segmentation': [[1, 1, 9, 1, 9, 9]]}, 'no "image_id"'),
    ({'id': 1}, {'id': 7, 'image_id': 1, 'segmentation': [[1, 1, 9, 1, 9, 9]]}, 'file_name'),
    ({'id': 1, 'file_name': 'x.jpg'}, {'id': 7, 'image_id': 1, 'segmentation': {'size': [40, 60]}}, 'neither'),
    ({'id': 1, 'file_name': 'x.jpg'}, {'id': 7, 'image_id': 1, 'segmentation': 'abc'}, 'neither'),
    ({'id': 1, 'file_name': 'x.jpg'}, {'id': 7, 'image_id': 1, 'segmentation': [['a', 'b', 'c', 'd']]}, 'polygon'),
    ({'id': 1, 'file_name': 'x.jpg'}, {'id': 7, 'image_id': 1, 'segmentation': [[1, 2, 3]]}, 'polygon'),
])
def test_malformed_coco_entries_are_isegm_errors_naming_the_entry(tmp_path, image_entry, annotation, message):
    from isegm.errors import IsegmError
    _image(tmp_path / 'x.jpg')
    (tmp_path / 'ann.json').write_text(json.dumps({'images': [image_entry], 'annotations': [annotation]}))
    with pytest.raises(IsegmError, match=message):
        CocoJsonDataset(tmp_path, tmp_path / 'ann.json')


def test_coco_rle_of_another_size_is_an_isegm_error(tmp_path):
    from isegm.errors import IsegmError
    _image(tmp_path / 'x.jpg')
    (tmp_path / 'ann.json').write_text(json.dumps({
        'images': [{'id': 1, 'file_name': 'x.jpg'}],
        'annotations': [{'id': 7, 'image_id': 1, 'segmentation': {'size': [30, 30], 'counts': [100, 800]}}]}))
    with pytest.raises(IsegmError, match='annotation 7 of x.jpg'):
        CocoJsonDataset(tmp_path, tmp_path / 'ann.json').get_sample(0)


@pytest.mark.parametrize('line, message', [
    ('0 10 10 50 10 50 30 10 30', 'normalised to'),    # pixel units: silently 0 objects before
    ('0 0.1 0.1 nan 0.1 0.5 0.5', 'non-finite'),
])
def test_yolo_coordinates_that_are_not_normalised_are_refused(tmp_path, line, message):
    from isegm.errors import IsegmError
    (tmp_path / 'images').mkdir(), (tmp_path / 'labels').mkdir()
    _image(tmp_path / 'images' / 'q.jpg')
    (tmp_path / 'labels' / 'q.txt').write_text(line + '\n')
    with pytest.raises(IsegmError, match=message):
        YoloSegDataset(tmp_path / 'images', tmp_path / 'labels').get_sample(0)


def test_label_map_of_an_exif_rotated_image_says_so(tmp_path):
    from isegm.errors import IsegmError
    (tmp_path / 'images').mkdir(), (tmp_path / 'labels').mkdir()
    img = Image.fromarray(np.zeros((40, 60, 3), np.uint8))
    exif = Image.Exif()
    exif[0x0112] = 6   # orientation: rotate 90 degrees on display
    img.save(tmp_path / 'images' / 'r.jpg', exif=exif)
    Image.fromarray(np.ones((40, 60), np.uint8)).save(tmp_path / 'labels' / 'r.png')   # raw pixel grid
    with pytest.raises(IsegmError, match='EXIF orientation'):
        LabelFolderDataset(tmp_path / 'images', tmp_path / 'labels').get_sample(0)
