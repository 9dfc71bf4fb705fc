"""Schedules are functions of the step (stateless), so a resumed run picks up exactly where it was."""
from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Phase:
    """One training phase. ``quantized``: fake-quantized forward; ``regularize``/``prune``: MSQ's search."""
    name: str
    epochs: int
    lr: float
    lr_schedule: str = "cosine"     # "cosine" decays to lr * final_lr_fraction inside the phase; "constant"
    quantized: bool = True
    regularize: bool = False
    prune: bool = False


FINAL_LR_FRACTION = 0.02


def lr_at(phase: Phase, phase_step: int, phase_steps: int) -> float:
    """Learning rate at step ``phase_step`` of ``phase_steps`` in the phase."""
    if phase.lr_schedule == "constant" or phase_steps <= 1:
        return phase.lr
    progress = min(1.0, phase_step / (phase_steps - 1))
    floor = phase.lr * FINAL_LR_FRACTION
    return floor + 0.5 * (phase.lr - floor) * (1.0 + math.cos(math.pi * progress))
