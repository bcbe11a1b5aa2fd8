"""Readers of the reference projects' layouts, on tiny generated copies of those layouts."""
import csv
import pickle

import cv2
import numpy as np
from PIL import Image

from isegm.data.datasets.coco_lvis import CocoLvisDataset
from isegm.data.datasets.openimages import OpenImagesDataset
from isegm.data.datasets.pascalvoc import PascalVocDataset
from isegm.data.datasets.sbd import SBDDataset


def _img(path, h=30, w=40):
    Image.fromarray(np.full((h, w, 3), 128, np.uint8)).save(path)


def test_sbd(tmp_path):
    from scipy.io import savemat
    (tmp_path / 'img').mkdir(), (tmp_path / 'inst').mkdir()
    _img(tmp_path / 'img' / '2008_0001.jpg')
    inst = np.zeros((30, 40), np.uint8)
    inst[0:10, 0:10] = 1
    inst[15:25, 15:35] = 2
    dt = np.dtype([('Segmentation', 'O'), ('Boundaries', 'O'), ('Categories', 'O')])
    gtinst = np.array([(inst, np.zeros(1), np.array([[15], [3]]))], dtype=dt).reshape(1, 1)
    savemat(tmp_path / 'inst' / '2008_0001.mat', {'GTinst': gtinst})
    (tmp_path / 'train.txt').write_text('2008_0001\n')
    s = SBDDataset(tmp_path, 'train').get_sample(0)
    assert sorted(s.masks.reshape(-1, s.num_objects).sum(0).tolist()) == [100, 200]


def test_pascal_voc(tmp_path):
    for d in ('JPEGImages', 'SegmentationObject', 'ImageSets/Segmentation'):
        (tmp_path / d).mkdir(parents=True)
    _img(tmp_path / 'JPEGImages' / 'a.jpg')
    lab = np.zeros((30, 40), np.uint8)
    lab[5:10, 5:10] = 1
    lab[10, :] = 255
    im = Image.fromarray(lab, mode='P')
    im.putpalette([0, 0, 0, 128, 0, 0] + [0] * 762)
    im.save(tmp_path / 'SegmentationObject' / 'a.png')
    (tmp_path / 'ImageSets/Segmentation/train.txt').write_text('a\n')
    s = PascalVocDataset(tmp_path, 'train').get_sample(0)
    assert s.num_objects == 1 and s.masks.sum() == 25 and s.ignore.sum() == 40


def test_coco_lvis_packed(tmp_path):
    split = tmp_path / 'train'
    (split / 'images').mkdir(parents=True), (split / 'masks').mkdir()
    _img(split / 'images' / '7.jpg')
    layer = np.zeros((30, 40), np.uint8)
    layer[0:5, 0:5] = 1
    layer[20:30, 20:30] = 2  # stuff
    encoded = [cv2.imencode('.png', layer)[1]]
    with open(split / 'masks' / '7.pickle', 'wb') as f:
        pickle.dump((encoded, [(0, 1), (0, 2)]), f)
    with open(split / 'hannotation.pickle', 'wb') as f:
        pickle.dump({7: {'num_instance_masks': 1, 'hierarchy': {}}}, f)
    assert CocoLvisDataset(tmp_path, 'train', stuff_prob=0).get_sample(0).masks.sum() == 25
    assert CocoLvisDataset(tmp_path, 'train', stuff_prob=1).get_sample(0).num_objects == 2


def test_openimages(tmp_path):
    split = tmp_path / 'train'
    (split / 'images').mkdir(parents=True), (split / 'masks').mkdir()
    _img(split / 'images' / 'abc.jpg', 30, 40)
    m = np.zeros((15, 20), np.uint8)
    m[0:5, 0:5] = 255
    Image.fromarray(m).save(split / 'masks' / 'abc_m1.png')
    with open(split / 'train-annotations-object-segmentation.csv', 'w', newline='') as f:
        w = csv.writer(f)
        w.writerow(['MaskPath', 'ImageID', 'LabelName'])
        w.writerow(['abc_m1.png', 'abc', '/m/01'])
    s = OpenImagesDataset(tmp_path, 'train').get_sample(0)
    assert s.masks.shape == (30, 40, 1) and s.masks.sum() == 100
