"""Validation accuracy and loss."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from msq.eval_mode import eval_mode

@torch.no_grad()
def evaluate(model: nn.Module, loader, device: torch.device) -> dict:
    """Top-1 accuracy (percent) and mean cross-entropy over ``loader``; the model's mode is restored."""
    correct, total, loss_sum = 0, 0, 0.0
    with eval_mode(model):
        for x, y in loader:
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            logits = model(x)
            loss_sum += float(F.cross_entropy(logits, y, reduction="sum"))
            correct += int((logits.argmax(1) == y).sum())
            total += y.numel()
    return {"acc": 100.0 * correct / max(total, 1), "loss": loss_sum / max(total, 1),
            "correct": correct, "total": total, "loss_sum": loss_sum}
