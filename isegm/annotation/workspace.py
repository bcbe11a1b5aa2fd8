"""Folder mode: the list of images to annotate, the current position and where outputs go."""
from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import List, Optional, Set

from isegm.annotation.export import output_paths
from isegm.annotation.storage import PathLike
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
        self.output_dir = out
        self.unreadable: Set[Path] = set()   # images that failed to load; skipped by next_unannotated
        self._out_resolved = out.resolve()
        # output PNGs written into the image folder itself must not become inputs
        if self._out_resolved == self.folder.resolve():
            self.images = [p for p in self.images if not _looks_like_output(p)]
        self._stem_counts = Counter(p.stem for p in self.images)   # stem() is called per image in loops

    def __len__(self) -> int:
        return len(self.images)

    @property
    def current(self) -> Path:
        return self.images[self.index]

    def stem(self, path: Optional[Path] = None) -> str:
        """Output name of an image: its stem, or its whole file name when another image of the folder has
        the same stem (``a.jpg`` and ``a.png`` must not share ``a.json``)."""
        path = path or self.current
        if self._stem_counts[path.stem] > 1:
            return path.name
        return path.stem

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


def _looks_like_output(path: Path) -> bool:
    """An export of ours (``<stem>_instances.png``, ``<stem>_preview.png``, ``<stem>_<k>.png``): PNG only."""
    stem = path.stem
    return path.suffix.lower() == '.png' and (stem.endswith('_instances') or stem.endswith('_preview')
                                              or stem.rsplit('_', 1)[-1].isdigit())
