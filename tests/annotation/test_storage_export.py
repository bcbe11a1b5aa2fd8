import json
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_utils

from isegm.annotation import (AnnotationDocument, ProjectFileError, atomic_write_json, export_image, load_project,
                              save_project)
from isegm.annotation.export import mask_to_polygons
from isegm.annotation.storage import atomic_writer, document_to_dict, remove_stale_temp_files

ROOT = Path(__file__).resolve().parents[2]
H, W = 48, 64


def make_doc(n_objects=3, name='img.png'):
    doc = AnnotationDocument((H, W), image_name=name)
    rng = np.random.default_rng(1)
    for k in range(n_objects):
        y, x = 8 + 12 * (k % 3), 8 + 20 * (k // 3 % 3)
        doc.add_click(y, x, True)
        doc.add_click(min(H - 1, y + 2), min(W - 1, x + 2), False)
        req = doc.prediction_request()
        prob = np.zeros((H, W), np.float32)
        prob[max(0, y - 5):y + 5, max(0, x - 6):x + 6] = rng.uniform(0.6, 1.0)
        doc.set_prediction(req, prob)
        doc.finish_object()
    if n_objects:
        doc.rename_object(doc.objects[0].id, 'cat')
    return doc


def test_project_round_trip(tmp_path):
    doc = make_doc(3)
    path = tmp_path / 'img.json'
    save_project(doc, path)
    assert not doc.is_modified
    back = load_project(path, image_shape=(H, W, 3))
    assert [o.id for o in back.objects] == [o.id for o in doc.objects]
    for a, b in zip(doc.objects, back.objects):
        np.testing.assert_array_equal(a.mask, b.mask)
        assert (a.label, a.color, a.clicks) == (b.label, b.color, b.clicks)
    assert back.next_id == doc.next_id and back.image_name == 'img.png'
    assert not back.has_unsaved_work and not back.can_undo
    # work resumes: a new object gets a fresh id, an old one can be reopened and corrected
    back.paint([(40, 60)], radius=2)
    assert back.finish_object().id == 4
    back.reopen_object(1)
    back.paint([(0, 0)], radius=1, erase=False)
    assert back.finish_object().id == 1


def test_project_for_another_image_or_damaged(tmp_path):
    path = tmp_path / 'img.json'
    save_project(make_doc(1), path)
    with pytest.raises(ProjectFileError, match='image'):
        load_project(path, image_shape=(H + 1, W))
    path.write_text('{"format": "isegm-annotation", "objects": [')
    with pytest.raises(ProjectFileError, match='cannot read'):
        load_project(path)
    path.write_text(json.dumps({'format': 'something-else'}))
    with pytest.raises(ProjectFileError, match='not an isegm'):
        load_project(path)


def test_exports_read_back_independently(tmp_path):
    image = np.random.default_rng(0).integers(0, 255, (H, W, 3), dtype=np.uint8)
    doc = make_doc(4)
    paths = export_image(doc, image, tmp_path, 'img')
    inst = np.asarray(Image.open(paths['instances']))
    assert inst.dtype == np.uint8
    for k, obj in enumerate(doc.objects, start=1):
        np.testing.assert_array_equal(inst == k, obj.mask)
        png = np.asarray(Image.open(tmp_path / f'img_{k}.png'))
        assert set(np.unique(png)) <= {0, 255}
        np.testing.assert_array_equal(png == 255, obj.mask)
    preview = np.asarray(Image.open(paths['preview']))
    assert preview.shape == (H, W, 3)
    assert not np.array_equal(preview[doc.objects[0].mask], image[doc.objects[0].mask])
    far = cv2.dilate((inst > 0).astype(np.uint8), np.ones((5, 5), np.uint8)) == 0   # away from borders
    np.testing.assert_array_equal(preview[far], image[far])

    coco = json.loads(paths['coco'].read_text())
    assert [im['file_name'] for im in coco['images']] == ['img.png']
    assert {c['name'] for c in coco['categories']} == {'cat', 'object'}
    assert len(coco['annotations']) == 4
    for ann, obj in zip(coco['annotations'], doc.objects):
        seg = dict(ann['segmentation'])
        seg['counts'] = seg['counts'].encode()
        np.testing.assert_array_equal(mask_utils.decode(seg).astype(bool), obj.mask)
        assert ann['area'] == obj.area == int(mask_utils.area(seg))
        assert ann['bbox'] == list(obj.bbox) == [int(v) for v in mask_utils.toBbox(seg)]
        poly_rle = mask_utils.merge(mask_utils.frPyObjects(ann['polygons'], H, W))
        iou = mask_utils.iou([poly_rle], [seg], [0])[0, 0]
        assert iou > 0.8
    # deleting an object removes its stale per-object PNG
    doc.delete_object(doc.objects[-1].id)
    (tmp_path / 'img_9.png').write_bytes(b'a file of the user, not written by the export')
    export_image(doc, image, tmp_path, 'img')
    assert not (tmp_path / 'img_4.png').exists() and (tmp_path / 'img_3.png').exists()
    assert (tmp_path / 'img_9.png').exists()   # only files the previous export wrote are removed


def test_coco_covers_all_saved_images(tmp_path):
    image = np.zeros((H, W, 3), np.uint8)
    export_image(make_doc(2, 'a.png'), image, tmp_path, 'a')
    export_image(make_doc(3, 'b.jpg'), image, tmp_path, 'b')
    coco = json.loads((tmp_path / 'coco.json').read_text())
    assert [im['file_name'] for im in coco['images']] == ['a.png', 'b.jpg']
    assert [a['image_id'] for a in coco['annotations']] == [1, 1, 2, 2, 2]
    assert len({a['id'] for a in coco['annotations']}) == 5


def test_coco_follows_every_change_of_the_project_files(tmp_path):
    # build_coco keeps what it decoded per project file; each change (a new save, a deleted or damaged
    # file) must show in the next coco.json, which must equal one built from scratch.
    from isegm.annotation import export
    image = np.zeros((H, W, 3), np.uint8)
    export_image(make_doc(2, 'a.png'), image, tmp_path, 'a')
    export_image(make_doc(3, 'b.jpg'), image, tmp_path, 'b')
    first = export.build_coco(tmp_path)
    first['annotations'][2]['segmentation']['size'][0] = -1          # editing the result (b's first object)
    first['annotations'][2]['polygons'].clear()                      # leaves the cache alone
    doc = make_doc(1, 'a.png')
    doc.rename_object(doc.objects[0].id, 'dog')
    export_image(doc, image, tmp_path, 'a')                           # a new version of a.json
    coco = export.build_coco(tmp_path)
    assert [a['image_id'] for a in coco['annotations']] == [1, 2, 2, 2]
    assert sorted(c['name'] for c in coco['categories']) == ['cat', 'dog', 'object']
    assert coco['annotations'][1]['segmentation']['size'] == [H, W] and coco['annotations'][1]['polygons']
    (tmp_path / 'b.json').unlink()
    assert [im['file_name'] for im in export.build_coco(tmp_path)['images']] == ['a.png']
    export_image(make_doc(3, 'b.jpg'), image, tmp_path, 'b')
    cached = export.build_coco(tmp_path)
    export._COCO_CACHE.clear()
    fresh = export.build_coco(tmp_path)
    assert {k: v for k, v in cached.items() if k != 'info'} == {k: v for k, v in fresh.items() if k != 'info'}
    (tmp_path / 'b.json').write_text('{"format": "isegm-annotation"')      # damaged in place
    assert [im['file_name'] for im in export.build_coco(tmp_path)['images']] == ['a.png']


def test_damaged_project_file_does_not_block_the_export_of_others(tmp_path):
    # A project file with the right "format" but broken content used to raise KeyError / InputError
    # from build_coco, so every later export of the folder failed (and the GUI could never save).
    image = np.zeros((H, W, 3), np.uint8)
    (tmp_path / 'broken.json').write_text(json.dumps({'format': 'isegm-annotation', 'image': {'height': 5}}))
    (tmp_path / 'badrle.json').write_text(json.dumps({
        'format': 'isegm-annotation', 'image': {'height': 5, 'width': 5},
        'objects': [{'id': 1, 'mask': {'size': [5, 5], 'counts': [0, 24]}}]}))
    doc = make_doc(2, 'a.png')
    export_image(doc, image, tmp_path, 'a')
    assert not doc.is_modified
    coco = json.loads((tmp_path / 'coco.json').read_text())
    assert [im['file_name'] for im in coco['images']] == ['a.png'] and len(coco['annotations']) == 2


def test_project_with_a_short_click_row_is_a_project_file_error(tmp_path):
    path = tmp_path / 'img.json'
    data = json.loads(json.dumps(document_to_dict(make_doc(1))))
    data['objects'][0]['clicks'] = [[3]]   # IndexError before
    path.write_text(json.dumps(data))
    with pytest.raises(ProjectFileError, match='damaged'):
        load_project(path)


def test_project_with_repeated_object_ids_is_a_project_file_error(tmp_path):
    path = tmp_path / 'img.json'
    data = json.loads(json.dumps(document_to_dict(make_doc(2))))
    data['objects'][1]['id'] = data['objects'][0]['id']   # two objects would share one instance value
    path.write_text(json.dumps(data))
    with pytest.raises(ProjectFileError, match='repeat'):
        load_project(path)


def test_export_converts_a_grey_image(tmp_path):
    grey = np.full((H, W), 200, np.uint8)   # render_overlay indexed image[:, :, :3]: IndexError before
    paths = export_image(make_doc(1), grey, tmp_path, 'g')
    preview = np.asarray(Image.open(paths['preview']))
    assert preview.shape == (H, W, 3) and (preview[0, 0] == 200).all()


def test_instance_png_uint16_for_many_objects(tmp_path):
    doc = AnnotationDocument((20, 20), image_name='many.png')
    for i in range(260):
        doc.paint([(i // 20, i % 20)], radius=0.4)
        doc.finish_object()
    paths = export_image(doc, np.zeros((20, 20, 3), np.uint8), tmp_path, 'many', update_coco=False)
    inst = np.asarray(Image.open(paths['instances']))
    assert inst.dtype == np.uint16 and inst.max() == 260
    np.testing.assert_array_equal(inst == 260, doc.objects[-1].mask)


def test_polygons_of_small_and_holed_masks():
    m = np.zeros((10, 10), bool)
    m[4, 4] = True
    polys = mask_to_polygons(m)
    assert len(polys) == 1 and len(polys[0]) >= 6
    m2 = np.zeros((30, 30), bool)
    m2[2:8, 2:8] = True
    m2[20:28, 15:29] = True
    assert len(mask_to_polygons(m2)) == 2


def test_atomic_write_failure_keeps_old_file(tmp_path):
    path = tmp_path / 'p.json'
    atomic_write_json(path, {'v': 1})
    with pytest.raises(RuntimeError, match='disk full'):
        with atomic_writer(path) as fh:
            fh.write(b'{"v": 2, "half')
            raise RuntimeError('disk full')
    assert json.loads(path.read_text()) == {'v': 1}
    assert [p.name for p in tmp_path.iterdir()] == ['p.json']     # no temp file left behind
    atomic_write_json(path, {'v': 3})
    assert json.loads(path.read_text()) == {'v': 3}


def test_killed_writer_leaves_old_file_intact(tmp_path):
    """A writer killed with SIGKILL half-way through leaves the previous file readable."""
    doc = make_doc(2)
    path = tmp_path / 'img.json'
    save_project(doc, path)
    original = path.read_bytes()
    script = textwrap.dedent(f'''
        import sys, time
        sys.path.insert(0, {str(ROOT)!r})
        from isegm.annotation.storage import atomic_writer
        with atomic_writer({str(path)!r}) as fh:
            fh.write(b'{{"format": "isegm-annotation", "objects": [' + b'x' * 100000)
            fh.flush()
            print('writing', flush=True)
            time.sleep(60)
            fh.write(b']}}')
    ''')
    proc = subprocess.Popen([sys.executable, '-c', script], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == 'writing'
        temps = [p for p in tmp_path.iterdir() if p.name != 'img.json']
        assert temps and temps[0].stat().st_size >= 100000      # the new content was really being written
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert path.read_bytes() == original
    back = load_project(path, image_shape=(H, W))
    assert len(back.objects) == 2
    assert remove_stale_temp_files(tmp_path) == 1
    assert [p.name for p in tmp_path.iterdir()] == ['img.json']


def test_hand_edited_project_is_repaired_and_exports_consistently(tmp_path):
    """Damage that leaves the masks intact must neither refuse the work nor break every later export."""
    data = json.loads(json.dumps(document_to_dict(make_doc(3))))
    data['objects'][0]['color'] = [999, 0]
    data['objects'][0]['label'] = None
    data['objects'][1]['color'] = [300, 0, 0]
    data['objects'][1]['clicks'].append([H + 5, 3, True])
    data['objects'][2]['mask'] = {'size': [H, W], 'counts': [H * W]}   # empty mask
    path = tmp_path / 'img.json'
    path.write_text(json.dumps(data))
    doc = load_project(path)
    assert len(doc.objects) == 2
    assert doc.objects[0].label == 'object' and all(0 <= c <= 255 for o in doc.objects for c in o.color)
    assert all(0 <= c.y < H and 0 <= c.x < W for o in doc.objects for c in o.clicks)
    export_image(doc, np.zeros((H, W, 3), np.uint8), tmp_path, 'img')
    assert not doc.is_modified
    coco = json.loads((tmp_path / 'coco.json').read_text())
    assert len(coco['annotations']) == 2 == len(load_project(path).objects)
    assert (tmp_path / 'img_2.png').exists() and not (tmp_path / 'img_3.png').exists()


def test_pathological_project_files_are_project_file_errors_and_skipped_by_the_coco_export(tmp_path):
    deep = tmp_path / 'deep.json'
    deep.write_text('{"format": "isegm-annotation", "x": ' + '[' * 100000 + ']' * 100000 + '}')
    huge = tmp_path / 'huge.json'
    huge.write_text(json.dumps({'format': 'isegm-annotation', 'version': 1,
                                'image': {'height': 200000, 'width': 200000}, 'objects': []}))
    big_rle = tmp_path / 'bigrle.json'
    big_rle.write_text(json.dumps({'format': 'isegm-annotation', 'version': 1, 'image': {'height': 5, 'width': 5},
                                   'objects': [{'id': 1, 'mask': {'size': [100000, 100000], 'counts': [1]}}]}))
    for path, message in ((deep, 'cannot read'), (huge, 'declares'), (big_rle, 'expected')):
        with pytest.raises(ProjectFileError, match=message):
            load_project(path)
    doc = make_doc(1, 'a.png')
    export_image(doc, np.zeros((H, W, 3), np.uint8), tmp_path, 'a')
    coco = json.loads((tmp_path / 'coco.json').read_text())
    assert [im['file_name'] for im in coco['images']] == ['a.png']


def test_a_folder_that_cannot_be_written_is_named_in_the_error_and_the_work_stays_unsaved(tmp_path):
    (tmp_path / 'file.txt').write_text('a file where the output folder should be')
    out = tmp_path / 'file.txt' / 'annotations'
    doc = make_doc(1)
    with pytest.raises(OSError, match='cannot write img.json in .*file.txt') as info:
        export_image(doc, np.zeros((H, W, 3), np.uint8), out, 'img')
    assert '.isegm-tmp' not in str(info.value) and doc.is_modified


def test_saving_again_rewrites_only_what_changed_and_the_coco_file_equals_a_fresh_build(tmp_path):
    """Unchanged objects' PNGs are not encoded again; a changed object, a file replaced or deleted by
    someone else, and the COCO entries (kept from the export instead of read back) stay exact."""
    import gc

    from isegm.annotation import export as export_module
    from isegm.annotation import mask_memo
    doc = make_doc(3)
    image = np.random.default_rng(0).integers(0, 255, (H, W, 3), dtype=np.uint8)
    export_image(doc, image, tmp_path, 'img')
    inode = {k: (tmp_path / f'img_{k}.png').stat().st_ino for k in (1, 2, 3)}
    export_image(doc, image, tmp_path, 'img')                       # nothing changed
    assert {k: (tmp_path / f'img_{k}.png').stat().st_ino for k in (1, 2, 3)} == inode
    doc.reopen_object(3)                        # object 3 changes; 2 is replaced on disk, 1's file is deleted
    doc.paint([(40, 60)], radius=3)
    doc.finish_object()
    Image.fromarray(np.zeros((H, W), np.uint8)).save(tmp_path / 'img_2.png')
    (tmp_path / 'img_1.png').unlink()
    export_image(doc, image, tmp_path, 'img')
    for k, obj in enumerate(doc.objects, start=1):
        np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / f'img_{k}.png')) > 0, obj.mask)
    assert (tmp_path / 'img_3.png').stat().st_ino != inode[3]
    primed = json.loads((tmp_path / 'coco.json').read_text())
    export_module._COCO_CACHE.clear()
    fresh = export_module.build_coco(tmp_path)                      # everything read back from the files
    primed['info'] = fresh['info'] = None
    assert primed == fresh
    # the remembered facts go with the masks
    key = id(doc.objects[0].region)
    assert key in mask_memo._MEMO
    del doc
    gc.collect()
    assert key not in mask_memo._MEMO


def test_document_dict_does_not_share_the_remembered_encoding():
    doc = make_doc(1)
    first = document_to_dict(doc)
    first['objects'][0]['mask']['size'].append(99)
    first['objects'][0]['mask']['counts'] = 'x'
    again = document_to_dict(doc)['objects'][0]['mask']
    assert again['size'] == [H, W] and again['counts'] != 'x'
    np.testing.assert_array_equal(mask_utils.decode({'size': again['size'], 'counts': again['counts'].encode()}),
                                  doc.objects[0].mask)
