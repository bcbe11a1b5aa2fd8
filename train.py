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

ROOT = Path(__file__).resolve().parent


def parse_args(argv=None) -> argparse.Namespace:
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
    p.add_argument('--lr-milestones', default=None,
                   help='comma-separated epochs at which the LR drops 10x; overrides the recipe, also when '
                        'resuming (e.g. --resume-exp=002 --lr-milestones=20: lower LR from epoch 20 on)')
    return p.parse_args(argv)


def load_recipe(path: Path):
    spec = importlib.util.spec_from_file_location(f'recipe_{path.stem}', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if not hasattr(module, 'main'):
        raise SystemExit(f'{path} has no main(ctx) function')
    return module


def experiment_dir(exps_root: Path, recipe: Path, exp_name: str, resume_exp) -> Path:
    try:
        rel = recipe.resolve().relative_to((ROOT / 'models').resolve()).with_suffix('')
    except ValueError:
        rel = Path(recipe.stem)
    base = exps_root / rel
    base.mkdir(parents=True, exist_ok=True)
    existing = sorted(d for d in base.iterdir() if d.is_dir() and d.name[:3].isdigit())
    if resume_exp is not None:
        matches = [d for d in existing if d.name.startswith(resume_exp)]
        if len(matches) != 1:
            raise SystemExit(f'--resume-exp={resume_exp!r} matches {len(matches)} folders in {base}')
        return matches[0]
    number = max((int(d.name[:3]) for d in existing), default=-1) + 1
    return base / (f'{number:03d}' + (f'_{exp_name}' if exp_name else ''))


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.gpus and 'LOCAL_RANK' not in os.environ:
        if ',' in args.gpus:
            raise SystemExit('several GPUs: run under torchrun, e.g. '
                             f'torchrun --nproc_per_node={len(args.gpus.split(","))} train.py {args.model_path}')
        os.environ.setdefault('CUDA_VISIBLE_DEVICES', args.gpus)
    sys.path.insert(0, str(ROOT))
    import torch
    from isegm.engine import distributed as du
    from isegm.engine.recipe_utils import RunContext
    from isegm.utils.config import load_config

    if args.threads:
        torch.set_num_threads(args.threads)
    du.init_distributed()
    cfg = load_config(args.config)
    recipe = Path(args.model_path)
    exp_path = None
    if du.is_main_process():
        exp_path = experiment_dir(Path(cfg['EXPS_PATH']), recipe, args.exp_name, args.resume_exp)
        exp_path.mkdir(parents=True, exist_ok=True)
        shutil.copy(recipe, exp_path / recipe.name)
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
                     pretrained=not args.no_pretrained,
                     lr_milestones=[int(m) for m in args.lr_milestones.split(',')] if args.lr_milestones else None)
    logging.getLogger(__name__).info('experiment folder: %s', exp_path)
    load_recipe(recipe).main(ctx)
    if du.is_distributed():
        torch.distributed.destroy_process_group()


if __name__ == '__main__':
    main()
