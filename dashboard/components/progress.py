"""Where a run is: its phases, how far each one got, and an ETA from the measured epoch times. Pure.

The phases of a registered method come from its ``MethodSpec.phases`` for the run's config; a run of a method
this installation does not know (an old run's) gets them from its phase events.

    >>> plan = phase_plan({"method": "msq", "train": {"pretrain_epochs": 1, "search_epochs": 2,
    ...                    "finetune_epochs": 1}}, events=[])
    >>> [(p.name, p.epochs) for p in plan]
    [('pretrain', 1), ('search', 2), ('finetune', 1)]
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from msq.config import RunConfig
from msq.errors import MSQError
from msq.methods import find_method


def phase_help(method: Optional[str], phase: str, config: Optional[dict] = None) -> str:
    """The reminder shown next to a phase's progress bar: the method's note for this run's config, else its
    ``phase_help`` ("" when there is none, or the method is not known here)."""
    spec = find_method(method)
    if spec is None:
        return ""
    note = spec.phase_note(phase, config or {}) if spec.phase_note else ""
    return note or spec.phase_help.get(phase, "")


@dataclass
class PhaseProgress:
    name: str
    epochs: int
    done: float = 0.0              # epochs done in this phase, fractional for the current one
    eta_s: Optional[float] = None  # seconds left in this phase (None: not enough measurements yet)

    @property
    def fraction(self) -> float:
        return min(max(self.done / self.epochs, 0.0), 1.0) if self.epochs else 1.0

    @property
    def state(self) -> str:
        return "done" if self.fraction >= 1.0 else "active" if self.done > 0 else "pending"


def phase_plan(config: Optional[dict], events: list) -> list[PhaseProgress]:
    """The run's phases with their epoch counts: its method's phases for its config when the method is known
    here, else the phase events seen so far plus what remains of its epochs."""
    config = config or {}
    plan = _method_phases(config)
    if plan is None:
        train = config.get("train") or {}
        total = sum(int(train.get(k) or 0) for k in ("pretrain_epochs", "search_epochs", "finetune_epochs"))
        plan = [(e["payload"].get("phase", "phase"), int(e["payload"].get("epochs") or 0))
                for e in events if e["kind"] == "phase"]
        rest = total - sum(n for _, n in plan)
        if rest > 0 or not plan:
            plan.append(("training", max(rest, 0)))
    return [PhaseProgress(name, epochs) for name, epochs in plan if epochs > 0]


def _method_phases(config: dict) -> Optional[list[tuple[str, int]]]:
    """[(phase, epochs)] from the registered method's plan, or None (method unknown, or config not valid)."""
    spec = find_method(config.get("method"))
    if spec is None:
        return None
    try:
        return [(phase.name, phase.epochs) for phase in spec.phases(RunConfig.from_dict(config))]
    except MSQError:
        return None


def measure(plan: list[PhaseProgress], latest: dict, scalars: dict, status: str) -> tuple[float, Optional[float]]:
    """Fill in each phase's progress and ETA; return (overall fraction, overall ETA in seconds).

    Epochs done come from the latest epoch-end row; the current epoch's share from the steps since
    then over the steps an epoch takes; seconds per epoch from the mean of ``epoch_seconds``."""
    total = sum(p.epochs for p in plan)
    epochs_done = int((latest.get("val_acc") or {}).get("epoch") or 0)
    step_now = (latest.get("loss") or {}).get("step") or 0
    epoch_end_step = (latest.get("val_acc") or {}).get("step") or 0
    frac = 0.0
    if epochs_done and epoch_end_step and status == "running":
        steps_per_epoch = epoch_end_step / epochs_done
        frac = min(max((step_now - epoch_end_step) / steps_per_epoch, 0.0), 0.99) if steps_per_epoch else 0.0
    done = float(total) if status == "completed" else min(epochs_done + frac, float(total))
    seconds = [v for v in (scalars.get("epoch_seconds") or {}).get("value", []) if v is not None]
    per_epoch = sum(seconds) / len(seconds) if seconds else None
    offset = 0
    for phase in plan:
        phase.done = min(max(done - offset, 0.0), float(phase.epochs))
        if per_epoch is not None and status in ("running", "queued"):
            phase.eta_s = (phase.epochs - phase.done) * per_epoch
        offset += phase.epochs
    fraction = done / total if total else (1.0 if status == "completed" else 0.0)
    eta = (total - done) * per_epoch if per_epoch is not None and status in ("running", "queued") else None
    return min(fraction, 1.0), eta


def format_seconds(seconds: Optional[float]) -> str:
    """3 s, 4 min 05 s, 2 h 03 min."""
    if seconds is None:
        return "—"
    seconds = max(float(seconds), 0.0)
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes, sec = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes} min {sec:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"
