"""The annotation document: objects, clicks, undo/redo, project files and exports (no display needed)."""
from isegm.annotation.box_mask import BoxMask
from isegm.annotation.document import (AnnotationDocument, AnnotationObject, AnnotationStateError, ClickRecord,
                                       Draft, PredictionRequest, object_color)
from isegm.annotation.export import build_coco, export_image, mask_to_polygons, write_coco
from isegm.annotation.storage import (ProjectFileError, atomic_write_bytes, atomic_write_json, load_project,
                                      save_project)
from isegm.annotation.workspace import Workspace

__all__ = ['AnnotationDocument', 'BoxMask', 'AnnotationObject', 'AnnotationStateError', 'ClickRecord', 'Draft',
           'PredictionRequest', 'object_color', 'build_coco', 'export_image', 'mask_to_polygons', 'write_coco',
           'ProjectFileError', 'atomic_write_bytes', 'atomic_write_json', 'load_project', 'save_project',
           'Workspace']
