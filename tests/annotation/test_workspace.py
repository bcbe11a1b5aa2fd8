import json

import numpy as np
import pytest
from PIL import Image

from isegm.annotation import Workspace
from isegm.annotation.export import export_image
from isegm.annotation.document import AnnotationDocument
from isegm.errors import InputError


def _folder(tmp_path, n=4):
    for i in range(n):
        Image.fromarray(np.full((8, 10, 3), i * 10, np.uint8)).save(tmp_path / f'im{i}.png')
    (tmp_path / 'notes.txt').write_text('not an image')
    return tmp_path


def test_folder_navigation_and_progress(tmp_path):
    ws = Workspace(_folder(tmp_path))
    assert len(ws) == 4 and ws.progress == '1 / 4' and ws.current.name == 'im0.png'
    assert ws.output_dir == tmp_path / 'annotations'
    assert ws.previous() is None and ws.index == 0
    assert ws.next().name == 'im1.png' and ws.progress == '2 / 4'
    ws.go(3)
    assert ws.next() is None and ws.current.name == 'im3.png'
    with pytest.raises(InputError):
        ws.go(4)


def test_next_unannotated(tmp_path):
    ws = Workspace(_folder(tmp_path))
    doc = AnnotationDocument((8, 10), image_name='im1.png')
    doc.paint([(3, 3)], radius=2)
    doc.finish_object()
    export_image(doc, np.zeros((8, 10, 3), np.uint8), ws.output_dir, 'im1')
    assert ws.is_annotated(tmp_path / 'im1.png') and not ws.is_annotated(tmp_path / 'im0.png')
    assert ws.next_unannotated().name == 'im2.png'
    ws.go(3)
    assert ws.next_unannotated().name == 'im0.png'    # wraps around


def test_single_file_and_bad_paths(tmp_path):
    _folder(tmp_path, 2)
    ws = Workspace(tmp_path / 'im1.png', output=tmp_path / 'out')
    assert len(ws) == 1 and ws.output_dir == tmp_path / 'out'
    with pytest.raises(InputError, match='neither'):
        Workspace(tmp_path / 'missing.png')
    empty = tmp_path / 'empty'
    empty.mkdir()
    with pytest.raises(InputError, match='no images'):
        Workspace(empty)


def test_next_unannotated_skips_unreadable_images(tmp_path):
    ws = Workspace(_folder(tmp_path))
    ws.unreadable.add(tmp_path / 'im1.png')
    assert ws.next_unannotated().name == 'im2.png'
    ws.unreadable.update({tmp_path / 'im3.png', tmp_path / 'im0.png'})
    assert ws.next_unannotated().name == 'im2.png'             # only the current one is left


def test_images_sharing_a_stem_get_their_own_outputs(tmp_path):
    for name, value in (('a.jpg', 10), ('a.png', 200), ('b.png', 50)):
        Image.fromarray(np.full((8, 10, 3), value, np.uint8)).save(tmp_path / name)
    ws = Workspace(tmp_path)
    assert [ws.stem(p) for p in ws.images] == ['a.jpg', 'a.png', 'b']
    doc = AnnotationDocument((8, 10), image_name='a.jpg')
    doc.paint([(3, 3)], radius=2)
    doc.finish_object()
    export_image(doc, np.zeros((8, 10, 3), np.uint8), ws.output_dir, ws.stem(tmp_path / 'a.jpg'))
    assert ws.is_annotated(tmp_path / 'a.jpg') and not ws.is_annotated(tmp_path / 'a.png')


def test_output_in_the_image_folder_is_refused(tmp_path):
    """Exports named <stem>_<k>.png in the image folder would mix with images such as IMG_0001.png and could
    overwrite them: the workspace refuses that output folder (for a folder and for a single image)."""
    for name in ('IMG_0001.png', 'cat.png', 'cat_1.png'):
        Image.fromarray(np.zeros((8, 10, 3), np.uint8)).save(tmp_path / name)
    with pytest.raises(InputError, match='image folder'):
        Workspace(tmp_path, output=tmp_path)
    with pytest.raises(InputError, match='image folder'):
        Workspace(tmp_path / 'cat.png', output=tmp_path / '.' / '')
    ws = Workspace(tmp_path)
    assert [p.name for p in ws.images] == ['cat.png', 'cat_1.png', 'IMG_0001.png']


def _annotate(ws, path, value=1):
    doc = AnnotationDocument((8, 10), image_name=path.name)
    doc.paint([(3, 3 + value)], radius=2)
    doc.finish_object()
    export_image(doc, np.zeros((8, 10, 3), np.uint8), ws.output_dir, ws.stem(path))


def test_annotations_stay_found_when_an_image_with_the_same_stem_is_added_or_removed(tmp_path):
    Image.fromarray(np.zeros((8, 10, 3), np.uint8)).save(tmp_path / 'a.jpg')
    ws = Workspace(tmp_path)
    _annotate(ws, tmp_path / 'a.jpg')
    assert (ws.output_dir / 'a.json').exists()
    Image.fromarray(np.zeros((8, 10, 3), np.uint8)).save(tmp_path / 'a.png')   # added later
    ws = Workspace(tmp_path)
    assert ws.stem(tmp_path / 'a.jpg') == 'a' and ws.is_annotated(tmp_path / 'a.jpg')
    assert ws.stem(tmp_path / 'a.png') == 'a.png' and not ws.is_annotated(tmp_path / 'a.png')
    _annotate(ws, tmp_path / 'a.png', 2)
    (tmp_path / 'a.jpg').unlink()                                                # removed later
    ws = Workspace(tmp_path)
    assert ws.stem(tmp_path / 'a.png') == 'a.png' and ws.is_annotated(tmp_path / 'a.png')
    # a.json (a.jpg's, image gone) is not handed to a.png: it keeps its own file
    ws = Workspace(tmp_path / 'a.png')
    assert ws.stem() == 'a.png'


def test_an_image_whose_stem_is_the_coco_file_name_keeps_its_project(tmp_path):
    Image.fromarray(np.zeros((8, 10, 3), np.uint8)).save(tmp_path / 'coco.jpg')
    Image.fromarray(np.zeros((8, 10, 3), np.uint8)).save(tmp_path / 'b.jpg')
    ws = Workspace(tmp_path)
    assert ws.stem(tmp_path / 'coco.jpg') == 'coco.jpg'
    _annotate(ws, tmp_path / 'coco.jpg')
    _annotate(ws, tmp_path / 'b.jpg')
    assert Workspace(tmp_path).is_annotated(tmp_path / 'coco.jpg')
    coco = json.loads((ws.output_dir / 'coco.json').read_text())
    assert sorted(im['file_name'] for im in coco['images']) == ['b.jpg', 'coco.jpg']
    doc = AnnotationDocument((8, 10))
    with pytest.raises(InputError, match='COCO file'):
        export_image(doc, np.zeros((8, 10, 3), np.uint8), ws.output_dir, 'COCO')
