"""Train an interactive segmentation model from a recipe under models/.

    python train.py models/compact/efflite0_click_itermask.py --workers=2 --exp-name=first
    python train.py models/compact/efflite0_click_itermask.py --resume-exp=000
    torchrun --nproc_per_node=2 train.py models/iter_mask/hrnet18_cocolvis_itermask_3p.py   # DDP

One experiment folder per run: EXPS_PATH/<recipe path under models/>/<NNN>[_<exp-name>]/ with the
recipe copy, train.log, metrics.jsonl and checkpoints/ (RITM format: {'state_dict', 'config', 'info'}).
"""
from __future__ import annotations

import argparse
import importlib.util
import logging
import os
import shutil
import sys
from pathlib import Path
from typing import List, Optional

ROOT = Path(__file__).resolve().parent


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('model_path', help='recipe file, e.g. models/compact/efflite0_click_itermask.py')
    p.add_argument('--exp-name', default='', help='suffix of the experiment folder name')
    p.add_argument('--workers', type=int, default=4, help='DataLoader worker processes')
    p.add_argument('--batch-size', type=int, default=None, help='overrides the recipe (total over processes)')
    p.add_argument('--gpus', default='', help='GPU ids for a single process, e.g. "0"; use torchrun for several')
    p.add_argument('--cpu', action='store_true', help='train on the CPU even when a GPU is present')
    p.add_argument('--epochs', type=int, default=None, help='overrides the recipe')
    p.add_argument('--epoch-len', type=int, default=None, help='samples per epoch, overrides the recipe')
    p.add_argument('--max-iters', type=int, default=None, help='batches per epoch at most (smoke runs)')
    p.add_argument('--resume-exp', default=None, help='experiment to continue: its folder name or number prefix')
    p.add_argument('--threads', type=int, default=None, help='torch.set_num_threads (CPU)')
    p.add_argument('--config', default=None, help='config.yml with dataset/weight paths (default: ./config.yml)')
    p.add_argument('--no-pretrained', action='store_true', help='skip the ImageNet initialisation')
    p.add_argument('--weights', default=None,
                   help='start from the weights of this checkpoint (a RITM-format .pth of the same model); '
                        'fresh optimizer and schedule, unlike --resume-exp')
    p.add_argument('--channels-last', action=argparse.BooleanOptionalAction, default=None,
                   help='NHWC memory format for training (default: on for CPU, where it is ~1.45x faster, '
                        'off on GPU)')
    p.add_argument('--lr-milestones', default=None,
                   help='comma-separated epochs at which the LR drops 10x; overrides the recipe, also when '
                        'resuming (e.g. --resume-exp=002 --lr-milestones=20: lower LR from epoch 20 on)')
    return p


def check_recipe_path(path: Path) -> Optional[str]:
    """What is wrong with ``path`` as a training recipe (missing, a folder, not .py), or None."""
    example = 'e.g. models/compact/efflite0_click_itermask.py'
    if path.is_dir():
        found = sorted(str(r) for r in path.glob('*.py'))[:5]
        hint = f'one of: {", ".join(found)}' if found else example
        return f'{path} is a folder, not a recipe file; pass a recipe .py file ({hint})'
    if not path.exists():
        return f'recipe file not found: {path}; pass a recipe under models/, {example}'
    if not path.is_file() or path.suffix != '.py':
        return f'{path} is not a Python recipe (.py file defining main(ctx)); {example}'
    return None


def validate_args(args: argparse.Namespace) -> Optional[str]:
    """Check the flags before any folder is created; returns what is wrong, or None."""
    problem = check_recipe_path(Path(args.model_path))
    if problem:
        return problem
    for flag, value, least in (('--workers', args.workers, 0), ('--batch-size', args.batch_size, 1),
                               ('--epochs', args.epochs, 1), ('--epoch-len', args.epoch_len, 1),
                               ('--max-iters', args.max_iters, 1), ('--threads', args.threads, 1)):
        if value is not None and value < least:
            return f'{flag} must be >= {least}, got {value}'
    if args.lr_milestones is not None:
        try:
            args.lr_milestones = [int(m) for m in args.lr_milestones.split(',')]
        except ValueError:
            return f'--lr-milestones must be comma-separated epoch numbers, e.g. 20,40; got {args.lr_milestones!r}'
    if args.weights is not None and not Path(args.weights).is_file():
        return f'--weights: checkpoint file not found: {args.weights}'
    if args.weights is not None and args.resume_exp is not None:
        return '--weights and --resume-exp exclude each other: a resumed run continues from its own weights'
    if args.config is not None and not Path(args.config).is_file():
        return f'config file not found: {args.config}; pass an existing config.yml or leave --config out'
    if args.gpus and 'LOCAL_RANK' not in os.environ and ',' in args.gpus:
        return ('several GPUs: run under torchrun, e.g. '
                f'torchrun --nproc_per_node={len(args.gpus.split(","))} train.py {args.model_path}')
    return None


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    """Parse and validate the flags (``lr_milestones`` becomes a list of ints); a bad value exits with
    code 2 and a one-line message."""
    parser = build_parser()
    args = parser.parse_args(argv)
    problem = validate_args(args)
    if problem:
        parser.error(problem)
    return args


def load_recipe(path: Path):
    """Import a recipe file; IsegmError when it has no ``main(ctx)``."""
    from isegm.errors import IsegmError
    spec = importlib.util.spec_from_file_location(f'recipe_{path.stem}', path)
    if spec is None or spec.loader is None:
        raise IsegmError(f'cannot import {path} as a Python module; pass a recipe .py file')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if not callable(getattr(module, 'main', None)):
        raise IsegmError(f'{path} has no main(ctx) function: it is not a training recipe')
    return module


def experiment_dir(exps_root: Path, recipe: Path, exp_name: str, resume_exp) -> Path:
    """The folder of this run (not created here): a new numbered one, or the one ``resume_exp`` names."""
    from isegm.errors import IsegmError
    try:
        rel = recipe.resolve().relative_to((ROOT / 'models').resolve()).with_suffix('')
    except ValueError:
        rel = Path(recipe.stem)
    base = exps_root / rel
    existing = sorted(d for d in base.iterdir() if d.is_dir() and d.name[:3].isdigit()) if base.is_dir() else []
    if resume_exp is not None:
        matches = [d for d in existing if d.name.startswith(resume_exp)]
        if len(matches) != 1:
            names = ', '.join(d.name for d in existing) or 'none'
            raise IsegmError(f'--resume-exp={resume_exp!r} matches {len(matches)} folders in {base} '
                             f'(experiments there: {names}); pass one folder name or its number')
        return matches[0]
    number = max((int(d.name[:3]) for d in existing), default=-1) + 1
    return base / (f'{number:03d}' + (f'_{exp_name}' if exp_name else ''))


def create_experiment(exp_path: Path, recipe: Path) -> List[Path]:
    """Create ``exp_path`` with a copy of the recipe; returns the folders this created, deepest first.
    OSError with the folder named when that fails (and nothing left behind)."""
    created = [d for d in (exp_path, *exp_path.parents) if not d.exists()]
    try:
        exp_path.mkdir(parents=True, exist_ok=True)
        shutil.copy(recipe, exp_path / recipe.name)
    except OSError as e:
        remove_if_unused(exp_path, recipe.name, created)
        raise OSError(f'cannot create the experiment folder {exp_path} ({e.strerror or e}); '
                      'set a writable EXPS_PATH in config.yml') from e
    return created


def remove_if_unused(exp_path: Path, recipe_name: str, created: List[Path]) -> None:
    """Undo :func:`create_experiment` for a run that failed before producing anything: remove ``exp_path``
    when it holds nothing but the recipe copy, empty files and empty folders, then the now empty folders
    ``created`` (deepest first). A folder this run did not create is kept."""
    if exp_path in created and exp_path.is_dir():
        if any(e.is_file() and e.relative_to(exp_path) != Path(recipe_name) and e.stat().st_size > 0
               for e in exp_path.rglob('*')):
            return
        shutil.rmtree(exp_path, ignore_errors=True)
    for d in created:
        try:
            d.rmdir()   # only when empty
        except OSError:
            pass


def main(argv: Optional[List[str]] = None) -> int:
    """Train; returns the exit code (2 with ``error: ...`` on stderr for a user error)."""
    args = parse_args(argv)
    if args.gpus and 'LOCAL_RANK' not in os.environ:
        os.environ.setdefault('CUDA_VISIBLE_DEVICES', args.gpus)
    sys.path.insert(0, str(ROOT))
    import torch
    from isegm.engine import distributed as du
    from isegm.engine.recipe_utils import RunContext
    from isegm.errors import IsegmError
    from isegm.utils.config import load_config

    if args.threads:
        torch.set_num_threads(args.threads)
    recipe = Path(args.model_path)
    exp_path, created = None, []
    try:   # everything that can fail on user input, before a folder is created
        cfg = load_config(args.config)
        recipe_module = load_recipe(recipe)
        du.init_distributed()
        if du.is_main_process():
            exp_path = experiment_dir(Path(cfg['EXPS_PATH']), recipe, args.exp_name, args.resume_exp)
            created = create_experiment(exp_path, recipe)
    except (IsegmError, OSError) as e:
        print(f'error: {e}', file=sys.stderr)
        return 2
    if du.is_distributed():
        holder = [str(exp_path) if exp_path else None]
        torch.distributed.broadcast_object_list(holder, src=0)
        exp_path = Path(holder[0])
    logging.basicConfig(level=logging.INFO if du.is_main_process() else logging.WARNING,
                        format='%(asctime)s %(levelname)s %(name)s: %(message)s')
    device = 'cpu' if args.cpu or not torch.cuda.is_available() else None
    ctx = RunContext(exp_path=exp_path, paths=cfg, batch_size=args.batch_size, workers=args.workers,
                     device=device, epochs=args.epochs, resume=args.resume_exp is not None,
                     max_iters_per_epoch=args.max_iters, epoch_len=args.epoch_len,
                     pretrained=not args.no_pretrained, lr_milestones=args.lr_milestones,
                     weights=args.weights, channels_last=args.channels_last)
    logging.getLogger(__name__).info('experiment folder: %s', exp_path)
    try:
        recipe_module.main(ctx)
    except BaseException as e:   # also Ctrl-C: a run stopped before producing anything leaves no folder
        if created:   # only the main process creates the folder
            remove_if_unused(exp_path, recipe.name, created)
        if isinstance(e, IsegmError):   # e.g. a dataset path missing from config.yml
            print(f'error: {e}', file=sys.stderr)
            return 2
        raise
    if du.is_distributed():
        torch.distributed.destroy_process_group()
    return 0


if __name__ == '__main__':
    sys.exit(main())
