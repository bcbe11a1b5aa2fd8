#!/usr/bin/env python
"""Interactive annotation tool (Tk).

    python demo.py [IMAGE_OR_FOLDER] [--checkpoint=NAME_OR_PATH] [--extreme-checkpoint=NAME_OR_PATH]
                   [--gpu=0 | --cpu] [--limit-longest-size=800] [--output=DIR]
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import List, Optional

ROOT = Path(__file__).resolve().parent
SAMPLE_IMAGE = ROOT / 'samples' / 'chelsea.png'

logger = logging.getLogger('demo')


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Interactive segmentation annotation tool (RITM / f-BRS / DEXTR).')
    parser.add_argument('input', nargs='?', default=None,
                        help='an image or a folder of images (default: the bundled sample image)')
    parser.add_argument('--checkpoint', default=None,
                        help='click model: zoo name or path (default: the bundled model in weights/)')
    parser.add_argument('--extreme-checkpoint', default=None,
                        help='extreme-point (DEXTR) model: zoo name or path (default: the bundled one, if any)')
    dev = parser.add_mutually_exclusive_group()
    dev.add_argument('--gpu', type=int, default=None, help='GPU id (falls back to the CPU without CUDA)')
    dev.add_argument('--cpu', action='store_true', help='run on the CPU (default when no --gpu is given)')
    parser.add_argument('--limit-longest-size', type=int, default=800,
                        help='images whose longer side exceeds this are shrunk for the network (default 800)')
    parser.add_argument('--output', default=None, help='output folder (default: <image folder>/annotations)')
    parser.add_argument('--log-level', default='INFO')
    return parser.parse_args(argv)


def choose_device(args: argparse.Namespace) -> str:
    """'cpu' or 'cuda:N'; ``--gpu=N`` without CUDA (or without GPU N) falls back to the CPU with a warning."""
    if args.cpu or args.gpu is None:
        return 'cpu'
    import torch
    if not torch.cuda.is_available():
        logger.warning('--gpu=%d given but CUDA is not available: running on the CPU', args.gpu)
        return 'cpu'
    count = torch.cuda.device_count()
    if not 0 <= args.gpu < count:
        logger.warning('--gpu=%d given but there are only %d GPUs (0..%d): running on the CPU',
                       args.gpu, count, count - 1)
        return 'cpu'
    return f'cuda:{args.gpu}'


def build_controller(args: argparse.Namespace):
    """Load the models and the workspace; raises IsegmError subclasses with user-facing messages."""
    import isegm
    from app.controller import InteractiveController
    from isegm.annotation.engine import AnnotationEngine, PredictorSettings
    from isegm.annotation.workspace import Workspace
    from isegm.errors import CheckpointError

    device = choose_device(args)
    source = Path(args.input) if args.input else SAMPLE_IMAGE
    workspace = Workspace(source, output=args.output)
    if args.input is None and args.output is None:
        # never write into the repository's samples folder
        workspace.output_dir = Path.cwd() / 'output' / 'annotations'
    model, info = isegm.load_model(args.checkpoint, device=device, return_info=True)
    extreme_model = None
    try:
        extreme_model = isegm.load_model(args.extreme_checkpoint, device=device, task='extreme')
    except CheckpointError as exc:
        if args.extreme_checkpoint is not None:
            raise
        logger.info('extreme-point mode disabled: %s', exc)
    engine = AnnotationEngine(model, device=device, extreme_model=extreme_model)
    settings = PredictorSettings(max_size=args.limit_longest_size,
                                 target_size=min(400, args.limit_longest_size))
    path = Path(info.get('path', ''))
    name = path.parent.name if path.stem == 'checkpoint' else info.get('name', path.stem)
    return InteractiveController(engine, workspace, model_name=name, settings=settings,
                                 output=Path(args.output) if args.output else None)


def _error_dialog(message: str) -> None:
    """Show a start-up error in a dialog when a display is available (it is on stderr already)."""
    import tkinter as tk
    from tkinter import messagebox
    try:
        root = tk.Tk()
    except tk.TclError:
        return
    root.withdraw()
    messagebox.showerror('isegm', message)
    root.destroy()


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=getattr(logging, str(args.log_level).upper(), logging.INFO),
                        format='%(asctime)s %(levelname)s %(name)s: %(message)s')
    import tkinter as tk
    from isegm.errors import IsegmError

    try:   # models first: a bad checkpoint is reported as such, with or without a display
        controller = build_controller(args)
    except (IsegmError, OSError, RuntimeError) as exc:
        # RuntimeError: e.g. CUDA failing to initialise; the message is enough, no traceback
        logger.error('%s', exc)
        _error_dialog(str(exc))
        return 1
    try:
        root = tk.Tk()
    except tk.TclError as exc:
        controller.close()
        print(f'cannot open a window ({exc}); is a display available (DISPLAY)?', file=sys.stderr)
        return 2
    from app.app import AnnotationApp
    root.geometry('1280x800')
    AnnotationApp(root, controller)
    controller.start()
    root.mainloop()
    return 0


if __name__ == '__main__':
    sys.exit(main())
