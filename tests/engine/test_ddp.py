"""Two CPU processes (gloo) train a couple of steps under DistributedDataParallel."""
import os
import socket

import numpy as np
import torch
import torch.multiprocessing as mp

from isegm.engine.recipe_utils import ritm_loss_cfg
from isegm.engine.trainer import ISTrainer
from tests.engine.tiny import ShapesDataset, TinyClickModel


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _worker(rank: int, world: int, port: int, out_dir: str) -> None:
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port), WORLD_SIZE=str(world),
                      RANK=str(rank), LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    torch.manual_seed(0)  # same initial weights on both ranks
    np.random.seed(rank)
    model = TinyClickModel(use_disks=True, norm_radius=3, with_prev_mask=True, use_rgb_conv=False)
    trainer = ISTrainer(model, ShapesDataset(8), ritm_loss_cfg(0), os.path.join(out_dir, 'exp'),
                        batch_size=4, workers=0, device='cpu', optimizer_params={'lr': 1e-2},
                        max_num_next_clicks=1, max_iters_per_epoch=2, progress=False)
    assert trainer.world_size == world and trainer.rank == rank
    assert len(trainer.train_loader) == 2  # the sampler splits 8 samples over 2 ranks, 2 per batch
    hist = trainer.run(1)
    trainer.close()
    sd = {k: v.clone() for k, v in trainer.net.module.state_dict().items()}
    torch.save({'state_dict': sd, 'loss': hist[0]['train_loss']}, os.path.join(out_dir, f'rank{rank}.pth'))
    torch.distributed.destroy_process_group()


def test_two_process_gloo_ddp(tmp_path):
    mp.spawn(_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    r0 = torch.load(tmp_path / 'rank0.pth', weights_only=True)
    r1 = torch.load(tmp_path / 'rank1.pth', weights_only=True)
    init = TinyClickModel(use_disks=True, norm_radius=3, with_prev_mask=True, use_rgb_conv=False)
    changed = False
    for k, v in r0['state_dict'].items():
        if v.is_floating_point() and 'running' not in k:
            assert torch.allclose(v, r1['state_dict'][k], atol=1e-6), f'{k} differs between ranks'
    torch.manual_seed(0)
    init = TinyClickModel(use_disks=True, norm_radius=3, with_prev_mask=True, use_rgb_conv=False).state_dict()
    changed = any(not torch.equal(init[k], v) for k, v in r0['state_dict'].items() if v.is_floating_point())
    assert changed, 'no parameter was updated'
    assert r0['loss'] == r1['loss']  # averaged over ranks
    assert (tmp_path / 'exp' / 'checkpoints' / 'last_checkpoint.pth').is_file()
