"""ISTrainer: RITM's training loop (ITER-M), with AMP on GPU, DDP under torchrun, per-epoch RITM-format
checkpoints and resume.

ITER-M: for each batch, 0..``max_num_next_clicks`` extra clicks are simulated without gradient -- the
network predicts, a click is put at the centre of the largest error (a random pixel of its inner half,
as the reference), and the prediction becomes the previous-mask input -- then one forward/backward
pass runs with all clicks. Checkpoints (``checkpoints/NNN.pth``, ``last_checkpoint.pth``) are
``{'state_dict', 'config', 'info'}`` (plain Python + tensors); optimizer/scheduler state for resuming
lives beside them in ``last_state.pth``.
"""
from __future__ import annotations

import itertools
import json
import logging
import math
import os
import random
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from scipy.ndimage import distance_transform_edt
from torch import nn
from torch.utils.data import DataLoader, Dataset
from torch.utils.data.distributed import DistributedSampler

from isegm.engine import distributed as du
from isegm.engine.optimizer import get_optimizer
from isegm.errors import CheckpointError
from isegm.model.metrics import TrainMetric

logger = logging.getLogger(__name__)

LossCfg = Dict[str, Tuple[nn.Module, float]]


def seed_worker(worker_id: int) -> None:
    """DataLoader ``worker_init_fn``: distinct numpy/python RNG streams per worker and epoch (the loader's
    generator, see :func:`loader_generator`, makes them distinct across processes and restarts too)."""
    seed = torch.initial_seed() % 2 ** 32
    np.random.seed(seed)
    random.seed(seed)


def loader_generator() -> torch.Generator:
    """A DataLoader generator seeded from the OS: the workers' seeds (and the samples drawn by datasets
    that sample at random, like ``epoch_len`` datasets) then differ between DDP ranks and between a run and
    its resumption. Without it every process starts from torch's fixed default seed: all ranks would
    augment and sample identically, and a resumed run would replay the samples of its first epochs."""
    generator = torch.Generator()
    generator.manual_seed(int.from_bytes(os.urandom(8), 'little') >> 1)
    return generator


def unwrap(model: nn.Module) -> nn.Module:
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


def get_next_points(pred: torch.Tensor, gt: torch.Tensor, points: torch.Tensor, click_index: int,
                    pred_thresh: float = 0.49) -> torch.Tensor:
    """Add one simulated click per sample (RITM's ``get_next_points``): in the larger error region
    (false negatives -> positive click), a random pixel farther from the region border than half of
    its maximum distance. The click goes to the first free row of its half of ``points``
    (or replaces the last row when full); its order is ``click_index``."""
    pred_np = pred.detach().float().cpu().numpy()[:, 0]
    gt_np = gt.detach().float().cpu().numpy()[:, 0]
    valid = gt_np != -1
    gt_mask = gt_np > 0.5
    fn = np.logical_and(np.logical_and(gt_mask, pred_np < pred_thresh), valid)
    fp = np.logical_and(np.logical_and(~gt_mask, pred_np > pred_thresh), valid)
    points = points.clone()
    n = points.shape[1] // 2
    for b in range(points.shape[0]):
        fn_dt = distance_transform_edt(np.pad(fn[b], 1))[1:-1, 1:-1]
        fp_dt = distance_transform_edt(np.pad(fp[b], 1))[1:-1, 1:-1]
        fn_max, fp_max = fn_dt.max(), fp_dt.max()
        if fn_max == 0 and fp_max == 0:
            continue
        is_positive = fn_max > fp_max
        dt = fn_dt if is_positive else fp_dt
        candidates = np.argwhere(dt > max(fn_max, fp_max) / 2.0)
        if len(candidates) == 0:
            continue
        y, x = candidates[np.random.randint(len(candidates))]
        lo = 0 if is_positive else n
        rows = points[b, lo:lo + n]
        free = torch.nonzero(rows[:, 0] < 0)
        row = lo + (int(free[0]) if len(free) else n - 1)
        points[b, row] = torch.tensor([float(y), float(x), float(click_index)], dtype=points.dtype)
    return points


class ISTrainer:
    """Train an ISModel (click model) with ITER-M.

    ``loss_cfg`` maps an output name to ``(loss, weight)``: ``'instances'`` and, for models with an
    auxiliary head, ``'instances_aux'``. ``lr_scheduler`` is a callable ``optimizer -> scheduler``,
    stepped once per epoch. ``val_samples`` (``(image, gt, ignore)`` triples) enable per-epoch
    NoC validation. ``exp_path`` receives ``train.log``, ``metrics.jsonl`` and ``checkpoints/``.
    """

    def __init__(self, model: nn.Module, trainset: Dataset, loss_cfg: LossCfg, exp_path,
                 valset: Optional[Dataset] = None, val_samples: Optional[Sequence] = None,
                 optimizer: str = 'adam', optimizer_params: Optional[Dict[str, Any]] = None,
                 lr_scheduler: Optional[Callable] = None, batch_size: int = 8, workers: int = 4,
                 device: Optional[str] = None, max_num_next_clicks: int = 3, prev_mask_drop_prob: float = 0.0,
                 checkpoint_interval: int = 1, metrics: Optional[List[TrainMetric]] = None,
                 amp: bool = True, max_iters_per_epoch: Optional[int] = None, grad_clip: Optional[float] = None,
                 info: Optional[Dict[str, Any]] = None, val_kwargs: Optional[Dict[str, Any]] = None,
                 progress: bool = True, find_unused_parameters: bool = False,
                 channels_last: Optional[bool] = None):
        du.init_distributed()
        self.rank, self.world_size = du.get_rank(), du.get_world_size()
        if device is None:
            device = f'cuda:{int(os.environ.get("LOCAL_RANK", 0))}' if torch.cuda.is_available() else 'cpu'
        self.device = torch.device(device)
        if self.device.type == 'cuda':
            torch.cuda.set_device(self.device)
        self.exp_path = Path(exp_path)
        self.ckpt_path = self.exp_path / 'checkpoints'
        if du.is_main_process():
            self.ckpt_path.mkdir(parents=True, exist_ok=True)
        self.loss_cfg = loss_cfg
        self.max_num_next_clicks = max_num_next_clicks
        self.prev_mask_drop_prob = prev_mask_drop_prob
        self.checkpoint_interval = checkpoint_interval
        self.metrics = metrics or []
        self.max_iters_per_epoch = max_iters_per_epoch
        self.grad_clip = grad_clip
        self.info = dict(info or {})
        self.val_samples = val_samples
        self.val_kwargs = dict(val_kwargs or {})
        self.progress = progress and du.is_main_process()
        self.valset = valset

        # NHWC weights and activations: oneDNN's convolutions (forward and backward) then skip a layout
        # re-order per layer, ~1.45x per step for the compact models on CPU (docs/training.md). Same
        # function, float rounding only. Default: on for CPU, off elsewhere (not measured on GPU here).
        self.channels_last = self.device.type == 'cpu' if channels_last is None else bool(channels_last)
        model = model.to(self.device)
        if self.channels_last:
            model = model.to(memory_format=torch.channels_last)
        self.net = model
        if self.world_size > 1:
            if self.device.type == 'cuda':
                model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
                self.net = model
            self.net = nn.parallel.DistributedDataParallel(
                model, device_ids=[self.device.index] if self.device.type == 'cuda' else None,
                find_unused_parameters=find_unused_parameters)
        self.optim = get_optimizer(unwrap(self.net), optimizer, optimizer_params)
        self.lr_scheduler = lr_scheduler(self.optim) if lr_scheduler is not None else None
        self.use_amp = amp and self.device.type == 'cuda'
        self.scaler = torch.amp.GradScaler('cuda', enabled=self.use_amp)

        per_process = max(1, batch_size // self.world_size)
        self.train_sampler = DistributedSampler(trainset, shuffle=True) if self.world_size > 1 else None
        self.train_loader = DataLoader(trainset, batch_size=per_process, shuffle=self.train_sampler is None,
                                       sampler=self.train_sampler, num_workers=workers, drop_last=True,
                                       pin_memory=self.device.type == 'cuda', worker_init_fn=seed_worker,
                                       persistent_workers=workers > 0, generator=loader_generator())
        self.val_loader = None
        if valset is not None:
            self.val_loader = DataLoader(valset, batch_size=per_process, shuffle=False, num_workers=workers,
                                         drop_last=False, worker_init_fn=seed_worker)
        self.start_epoch = 0
        self._log_handler = None
        if du.is_main_process():
            self._log_handler = logging.FileHandler(self.exp_path / 'train.log')
            self._log_handler.setFormatter(logging.Formatter('%(asctime)s %(levelname)s %(message)s'))
            logging.getLogger('isegm').addHandler(self._log_handler)

    # -- one batch -------------------------------------------------------------------------------------
    def to_device(self, batch: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
        """The batch on the training device; 4-d tensors in the model's memory format."""
        out = {}
        for k, v in batch.items():
            v = v.to(self.device, non_blocking=True)
            if self.channels_last and v.dim() == 4:
                v = v.contiguous(memory_format=torch.channels_last)
            out[k] = v
        return out

    def batch_forward(self, batch: Dict[str, torch.Tensor], validation: bool = False
                      ) -> Tuple[torch.Tensor, Dict[str, float], Dict[str, torch.Tensor], Dict[str, torch.Tensor]]:
        batch = self.to_device(batch)
        image, gt, points = batch['images'], batch['instances'], batch['points']
        core = unwrap(self.net)
        with_prev = getattr(core, 'with_prev_mask', False)
        prev = torch.zeros_like(image[:, :1])
        last_click = None
        with torch.no_grad(), torch.autocast(self.device.type, enabled=self.use_amp):
            num_iters = random.randint(0, self.max_num_next_clicks) if with_prev or self.max_num_next_clicks else 0
            if num_iters and not validation:
                core.eval()
            for click_index in range(num_iters):
                last_click = click_index
                net_in = torch.cat((image, prev), dim=1) if with_prev else image
                prev = torch.sigmoid(core(net_in, points)['instances']).float()
                points = get_next_points(prev, gt, points, click_index + 1)
            if num_iters and not validation:
                core.train()
            if with_prev and self.prev_mask_drop_prob > 0 and last_click is not None:
                drop = torch.rand(image.shape[0], device=self.device) < self.prev_mask_drop_prob
                prev[drop] = 0
        batch['points'] = points
        net_in = torch.cat((image, prev), dim=1) if with_prev else image
        with torch.autocast(self.device.type, enabled=self.use_amp):
            output = self.net(net_in, points)
        loss = torch.zeros((), device=self.device)
        parts: Dict[str, float] = {}
        for name, (criterion, weight) in self.loss_cfg.items():
            if weight <= 0 or name not in output:
                continue
            value = criterion(output[name].float(), gt).mean()
            loss = loss + weight * value
            parts[name] = float(value.detach())
        return loss, parts, batch, output

    # -- epochs ----------------------------------------------------------------------------------------
    def training(self, epoch: int) -> Dict[str, float]:
        if self.train_sampler is not None:
            self.train_sampler.set_epoch(epoch)
        for m in self.metrics:
            m.reset_epoch_stats()
        self.net.train()
        n_batches = len(self.train_loader)
        if self.max_iters_per_epoch:
            n_batches = min(n_batches, self.max_iters_per_epoch)
        total, count = 0.0, 0
        bar = None
        if self.progress:
            from tqdm import tqdm
            bar = tqdm(total=n_batches, desc=f'epoch {epoch}', ncols=100, leave=False)
        t0 = time.time()
        for i, batch in enumerate(itertools.islice(self.train_loader, n_batches)):
            loss, parts, batch, output = self.batch_forward(batch)
            self.optim.zero_grad(set_to_none=True)
            self.scaler.scale(loss).backward()
            if self.grad_clip:
                self.scaler.unscale_(self.optim)
                nn.utils.clip_grad_norm_(self.net.parameters(), self.grad_clip)
            self.scaler.step(self.optim)
            self.scaler.update()
            loss_value = float(loss.detach())
            if not math.isfinite(loss_value):
                logger.warning('epoch %d batch %d: non-finite loss %s', epoch, i, loss_value)
                continue
            total += loss_value
            count += 1
            for m in self.metrics:
                m.update(output['instances'], batch['instances'])
            if bar is not None:
                bar.set_postfix(loss=f'{total / count:.4f}')
                bar.update(1)
        if bar is not None:
            bar.close()
        stats = {'train_loss': du.reduce_mean(total / max(count, 1), self.device),
                 'epoch_time_s': time.time() - t0, 'lr': max(g['lr'] for g in self.optim.param_groups)}
        for m in self.metrics:
            stats[m.name] = du.reduce_mean(m.get_epoch_value(), self.device)
        return stats

    def val_batches(self):
        """The validation loader's batches, at most ``max_iters_per_epoch`` of them (the smoke-run limit
        applies to validation too: RITM's COCO+LVIS validation epoch alone is 2000 samples)."""
        if self.val_loader is None:
            return
        # islice stops before fetching batch n + 1 (a `break` inside the loop would load it first)
        yield from itertools.islice(self.val_loader, self.max_iters_per_epoch or None)

    @torch.no_grad()
    def validation(self, epoch: int) -> Dict[str, float]:
        stats: Dict[str, float] = {}
        if self.val_loader is not None:
            self.net.eval()
            total, count = 0.0, 0
            for batch in self.val_batches():
                loss, _, _, _ = self.batch_forward(batch, validation=True)
                total += float(loss)
                count += 1
            stats['val_loss'] = du.reduce_mean(total / max(count, 1), self.device)
        if self.val_samples and du.is_main_process():
            from isegm.engine.validation import evaluate_clicks
            samples = self.val_samples
            if self.max_iters_per_epoch:  # smoke runs: one NoC sample per allowed batch
                samples = list(samples)[:self.max_iters_per_epoch]
            stats.update({f'val_{k}': v for k, v in
                          evaluate_clicks(unwrap(self.net), samples, device=self.device,
                                          **self.val_kwargs).items()})
        return stats

    def run(self, num_epochs: int, validation: bool = True) -> List[Dict[str, Any]]:
        """Train epochs ``start_epoch .. num_epochs - 1``; returns the per-epoch stats."""
        history = []
        logger.info('training on %s, %d process(es), epochs %d..%d', self.device, self.world_size,
                    self.start_epoch, num_epochs - 1)
        for epoch in range(self.start_epoch, num_epochs):
            stats = {'epoch': epoch, **self.training(epoch)}
            if validation:
                stats.update(self.validation(epoch))
            if self.lr_scheduler is not None:
                self.lr_scheduler.step()
            if du.is_main_process():
                logger.info('epoch %d: %s', epoch, ', '.join(f'{k}={v:.4g}' if isinstance(v, float) else f'{k}={v}'
                                                          for k, v in stats.items()))
                with open(self.exp_path / 'metrics.jsonl', 'a', encoding='utf-8') as f:
                    f.write(json.dumps(stats) + '\n')
                self.save_checkpoint(epoch, stats)
            history.append(stats)
            if du.is_distributed():
                torch.distributed.barrier()
        return history

    # -- checkpoints -------------------------------------------------------------------------------------
    def save_checkpoint(self, epoch: int, stats: Dict[str, Any]) -> Path:
        """Write ``last_checkpoint.pth`` (every epoch), ``NNN.pth`` (every ``checkpoint_interval``) and
        the resume state ``last_state.pth``."""
        core = unwrap(self.net)
        info = dict(self.info, epoch=epoch, stats={k: v for k, v in stats.items() if isinstance(v, (int, float))})
        ckpt = {'state_dict': {k: v.detach().cpu().contiguous() for k, v in core.state_dict().items()},
                'config': core._config, 'info': info}
        last = self.ckpt_path / 'last_checkpoint.pth'
        _atomic_save(ckpt, last)
        if self.checkpoint_interval and (epoch + 1) % self.checkpoint_interval == 0:
            _atomic_save(ckpt, self.ckpt_path / f'{epoch:03d}.pth')
        state = {'epoch': epoch, 'optimizer': self.optim.state_dict(),
                 'scheduler': self.lr_scheduler.state_dict() if self.lr_scheduler is not None else None,
                 'scaler': self.scaler.state_dict()}
        _atomic_save(state, self.ckpt_path / 'last_state.pth')
        return last

    def resume(self, exp_path=None) -> int:
        """Continue from ``exp_path`` (default: this experiment): weights, optimizer, scheduler, epoch.
        Returns the epoch training continues with."""
        ckpt_dir = Path(exp_path or self.exp_path) / 'checkpoints'
        last, state_path = ckpt_dir / 'last_checkpoint.pth', ckpt_dir / 'last_state.pth'
        if not last.is_file():
            raise CheckpointError(f'nothing to resume in {ckpt_dir}: last_checkpoint.pth is missing')
        ckpt = torch.load(last, map_location='cpu', weights_only=True)
        unwrap(self.net).load_state_dict(ckpt['state_dict'])
        epoch = int(ckpt.get('info', {}).get('epoch', -1))
        if state_path.is_file():
            state = torch.load(state_path, map_location='cpu', weights_only=True)
            self.optim.load_state_dict(state['optimizer'])
            if self.lr_scheduler is not None and state.get('scheduler') is not None:
                self.lr_scheduler.load_state_dict(state['scheduler'])
            if state.get('scaler'):
                self.scaler.load_state_dict(state['scaler'])
            epoch = int(state['epoch'])
        self.start_epoch = epoch + 1
        logger.info('resumed from %s at epoch %d', ckpt_dir, self.start_epoch)
        return self.start_epoch

    def set_lr_milestones(self, milestones: Sequence[int]) -> None:
        """Replace the MultiStepLR milestones, also of a resumed run (whose scheduler state brought the old
        ones), and set the learning rates the new schedule gives the next epoch: ``initial_lr * gamma^k``
        with ``k`` = milestones already passed. E.g. ``[current_epoch]`` drops the rate from now on."""
        from bisect import bisect_right
        from collections import Counter
        sched = self.lr_scheduler
        if not isinstance(sched, torch.optim.lr_scheduler.MultiStepLR):
            raise ValueError(f'LR milestones need a MultiStepLR scheduler, this run has {type(sched).__name__}')
        sched.milestones = Counter(int(m) for m in milestones)
        passed = bisect_right(sorted(sched.milestones.elements()), sched.last_epoch)
        for group in self.optim.param_groups:
            group['lr'] = group['initial_lr'] * sched.gamma ** passed
        sched._last_lr = [g['lr'] for g in self.optim.param_groups]
        logger.info('LR milestones %s: lr %s from epoch %d', sorted(sched.milestones),
                    max(g['lr'] for g in self.optim.param_groups), sched.last_epoch)

    def close(self) -> None:
        if self._log_handler is not None:
            logging.getLogger('isegm').removeHandler(self._log_handler)
            self._log_handler.close()
            self._log_handler = None


def _atomic_save(obj: Any, path: Path) -> None:
    tmp = path.with_name(f'.{path.name}.tmp')
    torch.save(obj, tmp)
    os.replace(tmp, path)
