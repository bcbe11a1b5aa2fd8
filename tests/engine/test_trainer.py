import json

import numpy as np
import pytest
import torch

from isegm.engine.trainer import ISTrainer, get_next_points
from isegm.engine.recipe_utils import ritm_loss_cfg
from isegm.engine.validation import evaluate_clicks, next_click
from isegm.model.metrics import AdaptiveIoU
from isegm.utils.serialization import build_from_config
from tests.engine.tiny import CLASS_TABLE, ShapesDataset, TinyClickModel


def _trainer(tmp_path, model, **kw):
    torch.manual_seed(0)
    np.random.seed(0)
    args = dict(batch_size=4, workers=0, device='cpu', optimizer_params={'lr': 5e-3},
                max_num_next_clicks=2, metrics=[AdaptiveIoU()], progress=False)
    args.update(kw)
    return ISTrainer(model, ShapesDataset(16), ritm_loss_cfg(0.4), tmp_path / 'exp', **args)


def test_training_lowers_loss_and_writes_loadable_checkpoint(tmp_path):
    torch.manual_seed(0)
    model = TinyClickModel(width=16, use_disks=True, norm_radius=3, with_prev_mask=True, with_aux_output=True,
                           use_rgb_conv=False)
    val = [(s.image, s.masks[:, :, 0] > 0, None) for s in ShapesDataset(3, seed=5).dataset_samples]
    trainer = _trainer(tmp_path, model, val_samples=val, val_kwargs={'max_clicks': 3})
    history = trainer.run(6)
    trainer.close()
    losses = [h['train_loss'] for h in history]
    assert losses[-1] < 0.8 * losses[0], losses
    assert 'val_NoC@90' in history[-1]
    ckpt_path = tmp_path / 'exp' / 'checkpoints' / 'last_checkpoint.pth'
    ckpt = torch.load(ckpt_path, map_location='cpu', weights_only=True)
    assert set(ckpt) == {'state_dict', 'config', 'info'}
    assert ckpt['config']['class'] == 'tests.engine.tiny.TinyClickModel'
    assert ckpt['info']['epoch'] == 5
    rebuilt = build_from_config(ckpt['config'], CLASS_TABLE)
    rebuilt.load_state_dict(ckpt['state_dict'])
    model.eval(), rebuilt.eval()
    x = torch.rand(1, 4, 48, 48)
    pts = torch.tensor([[[20., 20., 0.], [-1., -1., -1.]]])
    with torch.no_grad():
        assert torch.allclose(model(x, pts)['instances'], rebuilt(x, pts)['instances'], atol=1e-6)
    assert (tmp_path / 'exp' / 'checkpoints' / '005.pth').is_file()
    lines = (tmp_path / 'exp' / 'metrics.jsonl').read_text().splitlines()
    assert len(lines) == 6 and json.loads(lines[-1])['epoch'] == 5


def test_resume_continues_from_last_epoch(tmp_path):
    mk = lambda: TinyClickModel(use_disks=True, norm_radius=3, with_prev_mask=True, use_rgb_conv=False)
    t1 = _trainer(tmp_path, mk(), max_iters_per_epoch=2)
    t1.run(2)
    t1.close()
    t2 = _trainer(tmp_path, mk(), max_iters_per_epoch=2)
    assert t2.resume() == 2
    for k, v in t1.net.state_dict().items():
        assert torch.equal(v, t2.net.state_dict()[k]), k
    assert t2.optim.state_dict()['state'], 'optimizer state was not restored'
    hist = t2.run(3)
    t2.close()
    assert [h['epoch'] for h in hist] == [2]


def test_get_next_points_adds_click_in_error_region():
    gt = torch.zeros(1, 1, 20, 20)
    gt[0, 0, 5:15, 5:15] = 1
    pred = torch.zeros(1, 1, 20, 20)  # everything missed -> a positive click inside the object
    points = torch.full((1, 4, 3), -1.0)
    out = get_next_points(pred, gt, points, 1)
    y, x, order = out[0, 0].tolist()
    assert 5 <= y < 15 and 5 <= x < 15 and order == 1
    assert (out[0, 1:] == -1).all()
    pred2 = gt.clone()
    pred2[0, 0, 0:4, 0:4] = 1  # false positive only -> a negative click there
    out2 = get_next_points(pred2, gt, points, 2)
    assert (out2[0, 2, :2] < 4).all() and out2[0, 2, 2] == 2


def test_validation_clicker_and_perfect_model_noc():
    gt = np.zeros((30, 30), bool)
    gt[10:20, 8:22] = True
    y, x, pos = next_click(np.zeros_like(gt), gt)
    assert pos and gt[y, x]

    class Oracle(torch.nn.Module):
        with_prev_mask = False

        def forward(self, x, points):
            return {'instances': torch.from_numpy(np.where(gt, 10.0, -10.0)).float()[None, None]}

    res = evaluate_clicks(Oracle(), [(np.zeros((30, 30, 3), np.uint8), gt, None)])
    assert res['NoC@90'] == 1 and res['IoU@1'] == 1.0


def test_data_streams_differ_between_processes_with_the_same_torch_seed(tmp_path):
    """Two DDP ranks (or a run and its resumption) start from torch's same default seed; their loader
    workers must still draw different augmentations / clicks."""
    batches = []
    for k in range(2):
        model = TinyClickModel(width=8, use_disks=True, norm_radius=3, with_prev_mask=True, use_rgb_conv=False)
        trainer = _trainer(tmp_path / str(k), model, workers=1)   # seeds torch / numpy identically
        batches.append(next(iter(trainer.train_loader)))
        trainer.close()
    assert batches[0]['points'].shape == batches[1]['points'].shape
    assert not torch.equal(batches[0]['points'], batches[1]['points'])


def test_new_lr_milestones_apply_to_a_resumed_run(tmp_path):
    """--lr-milestones on resume: the resumed scheduler state must not bring back the old milestones."""
    from functools import partial
    mk = lambda: TinyClickModel(use_disks=True, norm_radius=3, with_prev_mask=True, use_rgb_conv=False)
    sched = partial(torch.optim.lr_scheduler.MultiStepLR, milestones=[50], gamma=0.1)
    t1 = _trainer(tmp_path, mk(), max_iters_per_epoch=1, lr_scheduler=sched)
    t1.run(2)
    t1.close()
    t2 = _trainer(tmp_path, mk(), max_iters_per_epoch=1, lr_scheduler=sched)
    assert t2.resume() == 2
    assert t2.optim.param_groups[0]['lr'] == pytest.approx(5e-3)
    t2.set_lr_milestones([2, 3])
    assert t2.optim.param_groups[0]['lr'] == pytest.approx(5e-4)     # epoch 2 runs at 0.1x
    hist = t2.run(4)
    t2.close()
    assert [h['lr'] for h in hist] == pytest.approx([5e-4, 5e-5])     # and epoch 3 at 0.01x


def test_channels_last_training_computes_the_same_step(tmp_path):
    """The NHWC option (default on CPU) changes the layout only: same loss and gradients as NCHW, and the
    checkpoint it writes is in the standard layout."""
    mk = lambda: TinyClickModel(width=16, use_disks=True, norm_radius=3, with_prev_mask=True,
                                with_aux_output=True, use_rgb_conv=False)
    torch.manual_seed(3)
    nhwc_model = mk()
    nchw_model = mk()
    nchw_model.load_state_dict(nhwc_model.state_dict())
    nhwc = _trainer(tmp_path / 'a', nhwc_model, max_num_next_clicks=0)
    nchw = _trainer(tmp_path / 'b', nchw_model, max_num_next_clicks=0, channels_last=False)
    assert nhwc.channels_last and not nchw.channels_last
    conv_w = nhwc.net.body[0].weight
    assert conv_w.is_contiguous(memory_format=torch.channels_last) and not conv_w.is_contiguous()
    batch = next(iter(torch.utils.data.DataLoader(ShapesDataset(4), batch_size=4)))
    grads, layouts = [], []
    for trainer in (nhwc, nchw):
        trainer.net.train()
        loss, _, moved, _ = trainer.batch_forward(dict(batch))
        loss.backward()
        grads.append((float(loss.detach()), {n: p.grad.clone() for n, p in trainer.net.named_parameters()}))
        layouts.append(moved['images'].is_contiguous(memory_format=torch.channels_last))
    assert layouts == [True, False]
    assert abs(grads[0][0] - grads[1][0]) < 1e-5 * max(1.0, abs(grads[1][0]))
    # The two layouts take other convolution kernels, whose float32 sums run in another order (and on some
    # CPUs at reduced internal precision): elementwise differences of ~1e-6 here, ~1e-4 of the largest
    # gradient on the CI machine. A layout bug (wrong permutation) gives errors of the gradients' own size.
    scale = max(float(g.abs().max()) for g in grads[1][1].values())
    for name, g in grads[1][1].items():
        diff = grads[0][1][name] - g
        assert float(diff.abs().max()) <= 1e-2 * scale, name
        if float(g.norm()) > 1e-3 * scale * g.numel() ** 0.5:     # not a bias whose gradient is ~0 (before BN)
            assert float(diff.norm()) <= 2e-2 * float(g.norm()), name
    path = nhwc.save_checkpoint(0, {})
    saved = torch.load(path, map_location='cpu', weights_only=True)['state_dict']
    assert all(t.is_contiguous() for t in saved.values())
    nhwc.close(), nchw.close()
