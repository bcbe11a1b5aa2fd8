"""torchrun / DistributedDataParallel helpers: the trainer works the same with 1 or N processes."""
from __future__ import annotations

import os

import torch
import torch.distributed as dist


def init_distributed(backend: str = '') -> bool:
    """Join the process group that torchrun describes in the environment; ``False`` when not under it."""
    if int(os.environ.get('WORLD_SIZE', '1')) <= 1:
        return False
    if not dist.is_initialized():
        backend = backend or ('nccl' if torch.cuda.is_available() else 'gloo')
        dist.init_process_group(backend=backend)
    return True


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized()


def get_rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def get_world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def is_main_process() -> bool:
    return get_rank() == 0


def reduce_mean(value: float, device) -> float:
    """Average a Python number over all processes."""
    if not is_distributed():
        return float(value)
    t = torch.tensor([float(value)], dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return float(t.item()) / get_world_size()
