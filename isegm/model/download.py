"""Fetching zoo checkpoints into the weights folder: streamed, checksummed, written atomically."""
from __future__ import annotations

import hashlib
import logging
import os
import urllib.error
import urllib.request
from pathlib import Path
from typing import Callable, Optional, Union

from isegm.errors import CheckpointError
from isegm.model import zoo

logger = logging.getLogger(__name__)


def download_checkpoint(name_or_url: str, dest_dir: Union[str, os.PathLike], sha256: Optional[str] = None,
                        timeout: float = 60.0, progress: Optional[Callable[[int, Optional[int]], None]] = None
                        ) -> Path:
    """Download a zoo checkpoint (by name) or any URL into ``dest_dir``; returns the file's path.

    The file appears only when complete (temp file + rename) and, when a sha256 is known, verified.
    Network and checksum failures raise :class:`CheckpointError` and leave no partial file.
    """
    entry = zoo.get(name_or_url)
    if entry is not None:
        if not entry.url:
            raise CheckpointError(f'{entry.name} has no download URL')
        url, filename, sha256 = entry.url, entry.file, sha256 or entry.sha256
    elif '://' in name_or_url:
        url, filename = name_or_url, name_or_url.rstrip('/').rsplit('/', 1)[-1] or 'checkpoint.pth'
    else:
        raise CheckpointError(f'unknown checkpoint name {name_or_url!r} and not a URL')
    dest_dir = Path(dest_dir)
    dest_dir.mkdir(parents=True, exist_ok=True)
    target = dest_dir / filename
    tmp = dest_dir / f'.{filename}.part{os.getpid()}'
    digest = hashlib.sha256()
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp, open(tmp, 'wb') as out:
            total = resp.headers.get('Content-Length')
            total = int(total) if total and total.isdigit() else None
            done = 0
            while True:
                chunk = resp.read(1 << 20)
                if not chunk:
                    break
                out.write(chunk)
                digest.update(chunk)
                done += len(chunk)
                if progress:
                    progress(done, total)
            out.flush()
            os.fsync(out.fileno())
        if total is not None and done != total:
            raise CheckpointError(f'download of {url} stopped after {done} of {total} bytes; try again')
        if sha256 and digest.hexdigest() != sha256.lower():
            raise CheckpointError(f'checksum mismatch for {filename}: got {digest.hexdigest()}, expected {sha256}. '
                                  f'The file is corrupt or not the published one.')
        os.replace(tmp, target)
    except (urllib.error.URLError, OSError, ValueError) as e:
        raise CheckpointError(f'cannot download {url}: {e}. Check the network, or download the file by hand '
                              f'into {dest_dir}.')
    finally:
        if tmp.exists():
            tmp.unlink()
    logger.info('downloaded %s -> %s', url, target)
    return target
