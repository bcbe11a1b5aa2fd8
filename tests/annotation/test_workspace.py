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


def test_output_in_the_image_folder_hides_only_our_pngs(tmp_path):
    for name in ('frame_001.jpg', 'shot_instances.jpg', 'cat.png', 'cat_1.png', 'cat_instances.png',
                 'cat_preview.png'):
        Image.fromarray(np.zeros((8, 10, 3), np.uint8)).save(tmp_path / name)
    ws = Workspace(tmp_path, output=tmp_path)
    assert [p.name for p in ws.images] == ['cat.png', 'frame_001.jpg', 'shot_instances.jpg']
