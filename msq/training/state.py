"""Where a run is: phase, epoch, step, λ and what happened so far. Saved in every checkpoint."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Optional


@dataclass
class TrainState:
    lam: float = 0.0                 # λ as set (by config or live); the schedule may scale it
    lam_effective: float = 0.0       # λ used at the last step
    phase_index: int = 0
    phase: str = ""
    phase_epoch: int = 0             # epochs finished in the current phase
    phase_step: int = 0              # steps taken in the current phase
    epoch: int = 0                   # epochs finished in all phases
    step: int = 0                    # optimizer steps taken in all phases
    float_acc: Optional[float] = None
    last_val_acc: Optional[float] = None
    last_val_loss: Optional[float] = None
    train_loss: Optional[float] = None
    train_acc: Optional[float] = None
    bit_history: list = field(default_factory=list)   # per epoch: {"epoch", "step", "bits": [...]}
    events: list = field(default_factory=list)        # every emitted event, with step and epoch
    stop_requested: bool = False
    stop_reason: str = ""

    def to_dict(self) -> dict:
        data = dataclasses.asdict(self)
        data["stop_requested"], data["stop_reason"] = False, ""  # a resumed run is not stopped
        return data

    @classmethod
    def from_dict(cls, data: dict) -> "TrainState":
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})
