"""Trainer for DEXTR-style extreme-point models: batches from ``ExtremePointsDataset``
(``inputs`` 4 x R x R, ``instances``), model ``inputs -> logits``, class-balanced BCE by default.
Validation reports the mean IoU of ``sigmoid > 0.5`` on the validation set."""
from __future__ import annotations

from typing import Dict

import torch

from isegm.engine import distributed as du
from isegm.engine.trainer import ISTrainer


class ExtremeTrainer(ISTrainer):
    def batch_forward(self, batch, validation: bool = False):
        batch = self.to_device(batch)
        with torch.autocast(self.device.type, enabled=self.use_amp):
            logits = self.net(batch['inputs'])
        if logits.shape[-2:] != batch['instances'].shape[-2:]:  # e.g. DEXTR's stride-8 logits
            logits = torch.nn.functional.interpolate(logits, size=batch['instances'].shape[-2:],
                                                     mode='bilinear', align_corners=True)
        output = {'instances': logits}
        loss = torch.zeros((), device=self.device)
        parts = {}
        for name, (criterion, weight) in self.loss_cfg.items():
            if weight > 0 and name in output:
                value = criterion(output[name].float(), batch['instances']).mean()
                loss = loss + weight * value
                parts[name] = float(value.detach())
        return loss, parts, batch, output

    @torch.no_grad()
    def validation(self, epoch: int) -> Dict[str, float]:
        if self.val_loader is None:
            return {}
        self.net.eval()
        total, count, ious = 0.0, 0, []
        for batch in self.val_batches():  # at most max_iters_per_epoch (smoke runs)
            loss, _, batch, output = self.batch_forward(batch, validation=True)
            total += float(loss)
            count += 1
            gt = batch['instances']
            pred = output['instances'] > 0
            valid = gt != -1
            inter = (pred & (gt > 0.5) & valid).flatten(1).sum(1).float()
            union = ((pred | (gt > 0.5)) & valid).flatten(1).sum(1).float().clamp_min(1)
            ious.extend((inter / union).tolist())
        return {'val_loss': du.reduce_mean(total / max(count, 1), self.device),
                'val_mIoU': du.reduce_mean(sum(ious) / max(len(ious), 1), self.device)}
