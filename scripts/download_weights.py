#!/usr/bin/env python
"""Download zoo checkpoints into the weights folder: ``python scripts/download_weights.py NAME [NAME...]``
(``--list`` shows the names)."""
import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tqdm import tqdm  # noqa: E402

from isegm.errors import IsegmError  # noqa: E402
from isegm.model import zoo  # noqa: E402
from isegm.model.download import download_checkpoint  # noqa: E402
from isegm.utils.config import load_config  # noqa: E402


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument('names', nargs='*')
    p.add_argument('--list', action='store_true')
    p.add_argument('--dest', default=None, help='default: INTERACTIVE_MODELS_PATH of config.yml')
    args = p.parse_args(argv)
    if args.list or not args.names:
        for e in zoo.list_models():
            print(f'{e.name:28s} {e.task:8s} {e.family:14s} {e.url or "(bundled)"}')
        return 0
    dest = args.dest or load_config()['INTERACTIVE_MODELS_PATH']
    for name in args.names:
        bar = tqdm(unit='B', unit_scale=True, desc=name)

        def progress(done, total):
            bar.total = total
            bar.n = done
            bar.refresh()
        try:
            path = download_checkpoint(name, dest, progress=progress)
        except IsegmError as e:
            bar.close()
            print(f'error: {e}', file=sys.stderr)
            return 1
        bar.close()
        print(f'{name} -> {path}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
