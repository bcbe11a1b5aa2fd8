"""Folder mode: the list of images to annotate, the current position and where outputs go."""
from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Dict, List, Optional, Set

from isegm.annotation.export import COCO_FILE, output_paths
from isegm.annotation.storage import PathLike, read_project_data
from isegm.errors import InputError

IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff', '.webp', '.ppm', '.pgm', '.gif')


class Workspace:
    """Images of a folder (or a single image) with a cursor and an output folder.

    Args:
        source: an image file or a folder of images.
        output: output folder; default ``<image folder>/annotations``.
    """

    def __init__(self, source: PathLike, output: Optional[PathLike] = None):
        source = Path(source)
        if source.is_dir():
            self.folder = source
            out = Path(output) if output else source / 'annotations'
            self.images: List[Path] = sorted(
                (p for p in source.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS
                 and not p.name.startswith('.')), key=lambda p: p.name.lower())
            if not self.images:
                raise InputError(f'no images ({", ".join(IMAGE_EXTENSIONS)}) in folder {source}')
            self.index = 0
        elif source.is_file():
            self.folder = source.parent
            out = Path(output) if output else source.parent / 'annotations'
            self.images = [source]
            self.index = 0
        else:
            raise InputError(f'{source} is neither an image file nor a folder; pass an existing path')
        if out.resolve() == self.folder.resolve():
            # Exports are named <stem>_<k>.png, <stem>_instances.png ...: in the image folder they would mix
            # with the images (IMG_0001.png looks like an export) and could overwrite or remove them.
            raise InputError(f'the output folder {out} is the image folder itself; exports there could overwrite '
                             f'images. Choose another output folder (the default is {self.folder / "annotations"})')
        self.output_dir = out
        self.unreadable: Set[Path] = set()   # images that failed to load; skipped by next_unannotated
        self._stem_counts = Counter(p.stem for p in self.images)
        self._stems: Dict[Path, str] = {}    # stem() is called per image in loops
        self._names = {p.name for p in self.images}

    def __len__(self) -> int:
        return len(self.images)

    @property
    def current(self) -> Path:
        return self.images[self.index]

    def stem(self, path: Optional[Path] = None) -> str:
        """Output name of an image: its stem, or its whole file name when another image of the folder has
        the same stem (``a.jpg`` and ``a.png`` must not share ``a.json``) or the stem is ``coco`` (the
        COCO file's name).

        An existing project file of this image under the other name wins, so annotations stay found when
        an image with the same stem is added to (or removed from) the folder later.
        """
        path = Path(path or self.current)
        if path not in self._stems:
            self._stems[path] = self._resolve_stem(path)
        return self._stems[path]

    def _resolve_stem(self, path: Path) -> str:
        reserved = Path(COCO_FILE).stem
        default = path.name if self._stem_counts[path.stem] > 1 or path.stem.lower() == reserved else path.stem
        exists = output_paths(self.output_dir, default)['project'].is_file()
        other = path.stem if default == path.name else path.name
        if other.lower() != reserved and self._project_owner(other) == path.name:
            # saved under the other name before the folder changed (an image with the same stem came or went)
            if not (exists and self._project_owner(default) == path.name):
                return other
        if exists and default == path.stem and default in self._names:
            # <stem>.json may be the file of the image named <stem> (``a.jpg`` beside ``a.jpg.png``)
            if self._project_owner(default) not in ('', path.name):
                return path.name
        return default

    def _project_owner(self, stem: str) -> Optional[str]:
        """The image file name recorded in the project file ``<stem>.json``: None when there is no such file,
        '' when it cannot be read or records no name."""
        path = output_paths(self.output_dir, stem)['project']
        if not path.is_file():
            return None
        image = (read_project_data(path) or {}).get('image')
        return str(image.get('file_name') or '') if isinstance(image, dict) else ''

    @property
    def progress(self) -> str:
        """'12 / 340' style position."""
        return f'{self.index + 1} / {len(self.images)}'

    def is_annotated(self, path: Path) -> bool:
        return output_paths(self.output_dir, self.stem(path))['project'].exists()

    def go(self, index: int) -> Path:
        if not 0 <= index < len(self.images):
            raise InputError(f'image index {index} is out of range 0..{len(self.images) - 1}')
        self.index = index
        return self.current

    def next(self) -> Optional[Path]:
        """Move to the next image; None (and no move) at the end."""
        return self.go(self.index + 1) if self.index + 1 < len(self.images) else None

    def previous(self) -> Optional[Path]:
        """Move to the previous image; None (and no move) at the start."""
        return self.go(self.index - 1) if self.index > 0 else None

    def next_unannotated(self) -> Optional[Path]:
        """Move to the first image after the current one (wrapping) without a project file.

        Images in :attr:`unreadable` are skipped: they cannot be annotated.
        """
        n = len(self.images)
        for step in range(1, n + 1):
            i = (self.index + step) % n
            if self.images[i] not in self.unreadable and not self.is_annotated(self.images[i]):
                return self.go(i)
        return None

