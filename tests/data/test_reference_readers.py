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


# -- COCO panoptic, LVIS v1, ADE20K -------------------------------------------------------------------
def _areas(sample):
    return sample.masks.reshape(-1, sample.num_objects).sum(0).tolist()


def test_coco_panoptic(tmp_path):
    """Things are objects, stuff only with ``stuff_prob``, crowd things are ignored; the segment id is
    ``R + 256 G + 256^2 B`` (all three channels matter)."""
    import json
    from isegm.data.datasets.coco import CocoDataset
    (tmp_path / 'train2017').mkdir()
    (tmp_path / 'annotations' / 'panoptic_train').mkdir(parents=True)
    for stem in ('000000000001', '000000000002'):
        _img(tmp_path / 'train2017' / f'{stem}.jpg', 30, 40)
    person, car, crowd, sky = 1 + 2 * 256 + 3 * 65536, 7 + 256, 9, 5 * 65536 + 1
    ids = np.zeros((30, 40), np.int64)
    ids[0:5, 0:10] = person       # 50 px
    ids[10:14, 0:6] = car         # 24 px
    ids[20:23, 30:34] = crowd     # 12 px, ignored
    ids[25:30, 0:20] = sky        # 100 px, stuff
    png = np.stack([ids % 256, ids // 256 % 256, ids // 65536], axis=2).astype(np.uint8)
    Image.fromarray(png).save(tmp_path / 'annotations' / 'panoptic_train' / '000000000001.png')
    ids2 = np.zeros((30, 40), np.int64)
    ids2[1:4, 1:4] = person       # same id in another image: 9 px
    png2 = np.stack([ids2 % 256, ids2 // 256 % 256, ids2 // 65536], axis=2).astype(np.uint8)
    Image.fromarray(png2).save(tmp_path / 'annotations' / 'panoptic_train' / '000000000002.png')
    seg = lambda i, c, crowd=0: {'id': i, 'category_id': c, 'iscrowd': crowd}
    data = {'categories': [{'id': 1, 'isthing': 1, 'name': 'person'}, {'id': 3, 'isthing': 1, 'name': 'car'},
                           {'id': 187, 'isthing': 0, 'name': 'sky'}],
            'annotations': [{'file_name': '000000000001.png', 'image_id': 1,
                             'segments_info': [seg(person, 1), seg(car, 3), seg(crowd, 1, 1), seg(sky, 187)]},
                            {'file_name': '000000000002.png', 'image_id': 2, 'segments_info': [seg(person, 1)]}]}
    (tmp_path / 'annotations' / 'panoptic_train.json').write_text(json.dumps(data))

    things = CocoDataset(tmp_path, 'train', stuff_prob=0)
    assert len(things) == 2
    s = things.get_sample(0)
    assert s.image.shape == (30, 40, 3) and s.masks.shape == (30, 40, 2)
    assert _areas(s) == [50, 24]
    assert s.masks[0:5, 0:10, 0].all() and s.masks[10:14, 0:6, 1].all()
    assert s.ignore is not None and s.ignore.sum() == 12 and s.ignore[20:23, 30:34].all()
    s = CocoDataset(tmp_path, 'train', stuff_prob=1).get_sample(0)
    assert _areas(s) == [50, 24, 100] and s.masks[25:30, 0:20, 2].all()
    s = things.get_sample(1)
    assert _areas(s) == [9] and s.ignore is None and s.sample_id == '000000000002'


def _lvis_image(path, h, w):
    path.parent.mkdir(parents=True, exist_ok=True)
    _img(path, h, w)


def _square(x0, y0, x1, y1):
    """Polygon (flat LVIS list) of the inclusive pixel box x0..x1, y0..y1."""
    return [x0, y0, x1, y0, x1, y1, x0, y1]


def test_lvis_v1(tmp_path):
    """Objects are polygon unions, larger first; one mostly under a larger one is dropped; val images that
    come from COCO train2017 are read from ``train/images`` (RITM's layout)."""
    import json
    from isegm.data.datasets.lvis import LvisDataset
    url = 'http://images.cocodataset.org/{}/{:012d}.jpg'
    _lvis_image(tmp_path / 'val' / 'images' / '000000000001.jpg', 30, 40)
    _lvis_image(tmp_path / 'train' / 'images' / '000000000002.jpg', 20, 25)   # val image from train2017
    images = [{'id': 1, 'coco_url': url.format('val2017', 1), 'height': 30, 'width': 40},
              {'id': 2, 'coco_url': url.format('train2017', 2), 'height': 20, 'width': 25},
              {'id': 3, 'coco_url': url.format('val2017', 3), 'height': 30, 'width': 40}]  # no objects
    anns = [
        # two overlapping squares: union 100 + 100 - 25 = 175 px
        {'id': 10, 'image_id': 1, 'category_id': 1, 'segmentation': [_square(0, 0, 9, 9), _square(5, 5, 14, 14)]},
        {'id': 11, 'image_id': 1, 'category_id': 2, 'segmentation': [_square(27, 12, 34, 16)]},  # 40 px, 15 on #12
        {'id': 12, 'image_id': 1, 'category_id': 2, 'segmentation': [_square(20, 10, 29, 19)]},  # 100 px
        {'id': 13, 'image_id': 1, 'category_id': 3, 'segmentation': [_square(22, 12, 26, 16)]},  # inside #12
        {'id': 20, 'image_id': 2, 'category_id': 1, 'segmentation': [_square(2, 3, 6, 7)]},      # 25 px
    ]
    (tmp_path / 'val' / 'lvis_v1_val.json').write_text(json.dumps({'images': images, 'annotations': anns}))

    ds = LvisDataset(tmp_path, 'val')
    assert len(ds) == 2
    s = ds.get_sample(0)
    assert s.image.shape == (30, 40, 3)
    assert _areas(s) == [175, 100, 40]
    assert s.masks[5:10, 5:10, 0].all() and s.masks[10:20, 20:30, 1].all() and s.masks[12:17, 27:35, 2].all()
    assert _areas(LvisDataset(tmp_path, 'val', max_overlap_ratio=0.3).get_sample(0)) == [175, 100]
    s = ds.get_sample(1)
    assert s.image.shape == (20, 25, 3) and _areas(s) == [25] and s.masks[3:8, 2:7, 0].all()


def test_ade20k_2021(tmp_path):
    """``index_ade20k.pkl`` (folders start with the dataset's own name) splits training/validation; each
    image's JSON lists instance masks; parts and empty masks are skipped."""
    import json
    from isegm.data.datasets.ade20k import ADE20kDataset
    root = tmp_path / 'ADE20K_2021_17_01'
    folders = ['ADE20K_2021_17_01/images/ADE/training/urban/street',
               'ADE20K_2021_17_01/images/ADE/validation/home/kitchen']
    names = ['ADE_train_00000001.jpg', 'ADE_val_00000001.jpg']
    boxes = [[(slice(0, 6), slice(0, 10), 0), (slice(10, 15), slice(10, 14), 1), (slice(20, 25), slice(0, 6), 0),
              (slice(0, 0), slice(0, 0), 0)],   # 60 px, a part (skipped), 30 px, an empty mask (skipped)
             [(slice(2, 9), slice(3, 5), 0)]]   # 14 px
    for folder, name, objs in zip(folders, names, boxes):
        d = root.joinpath(*folder.split('/')[1:])
        stem = name[:-4]
        (d / stem).mkdir(parents=True)
        _img(d / name, 30, 40)
        entries = []
        for k, (ys, xs, part_level) in enumerate(objs):
            m = np.zeros((30, 40), np.uint8)
            m[ys, xs] = 255
            mask_name = f'{stem}/instance_{k:03d}_{stem}.png'
            Image.fromarray(m).save(d / mask_name)
            entries.append({'id': k, 'name': 'thing', 'instance_mask': mask_name,
                            'parts': {'is_part_of': [0] if part_level else [], 'part_level': part_level}})
        (d / f'{stem}.json').write_text(json.dumps({'annotation': {'filename': name, 'object': entries}}))
    with open(root / 'index_ade20k.pkl', 'wb') as f:
        pickle.dump({'folder': folders, 'filename': names}, f)

    train = ADE20kDataset(root, 'train')
    assert len(train) == 1
    s = train.get_sample(0)
    assert s.image.shape == (30, 40, 3) and _areas(s) == [60, 30]
    assert s.masks[0:6, 0:10, 0].all() and s.masks[20:25, 0:6, 1].all() and s.sample_id == 'ADE_train_00000001'
    val = ADE20kDataset(root, 'val')
    assert len(val) == 1 and _areas(val.get_sample(0)) == [14]
