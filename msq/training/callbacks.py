"""The training loop emits events; callbacks listen. The loop does not know who listens.

The CLI attaches a console progress bar and a run-folder writer; the runner attaches the run-store
callback. A callback can steer the run through the trainer: ``trainer.request_stop(reason)`` and
``trainer.set_lam(value, source)`` (both take effect at the next step and are logged as events).

Order of calls for one run:
    on_run_start
    for each phase:  on_phase_start, (on_step_end [on_log] ...)*, on_epoch_end [on_checkpoint] ...
    on_event at any time (prune, phase, lam_change, hessian, nan, stop)
    on_run_end (always, also after an error: status "failed" with the reason)
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Optional

if TYPE_CHECKING:  # pragma: no cover
    from msq.training.trainer import Trainer


class Callback:
    """Base class: override what you need. ``trainer.state`` holds phase/epoch/step/λ."""

    def on_run_start(self, trainer: "Trainer") -> None:
        """``trainer.cfg``, ``trainer.layers`` (list of LayerInfo) and ``trainer.state`` are set.
        On resume, ``trainer.state.step`` > 0 and ``trainer.resumed`` is True."""

    def on_phase_start(self, trainer: "Trainer", phase: str) -> None:
        """phase is one of "pretrain", "search", "finetune" (or a method's own, e.g. "train")."""

    def on_step_end(self, trainer: "Trainer", scalars: dict) -> None:
        """Every optimizer step. scalars: loss, task_loss, reg, lam, lr (floats)."""

    def on_log(self, trainer: "Trainer", layer_metrics: dict) -> None:
        """Every ``train.log_every`` steps: {metric: list of floats in layer order}."""

    def on_epoch_end(self, trainer: "Trainer", scalars: dict) -> None:
        """scalars: val_acc, val_loss, train_loss, train_acc, avg_bits, compression, epoch_seconds."""

    def on_event(self, trainer: "Trainer", kind: str, payload: dict) -> None:
        """A discrete event: "phase", "prune", "lam_change", "hessian", "nan", "stop", "checkpoint"."""

    def on_run_end(self, trainer: "Trainer", status: str, summary: dict, error: Optional[str]) -> None:
        """status: "completed", "stopped" or "failed"; summary is the final result (see result.json)."""


class CallbackList(Callback):
    """Fans every call out to its callbacks in order."""

    def __init__(self, callbacks: Optional[list] = None) -> None:
        self.callbacks = list(callbacks or [])

    def append(self, callback: Callback) -> None:
        self.callbacks.append(callback)

    def on_run_start(self, trainer):
        for c in self.callbacks:
            c.on_run_start(trainer)

    def on_phase_start(self, trainer, phase):
        for c in self.callbacks:
            c.on_phase_start(trainer, phase)

    def on_step_end(self, trainer, scalars):
        for c in self.callbacks:
            c.on_step_end(trainer, scalars)

    def on_log(self, trainer, layer_metrics):
        for c in self.callbacks:
            c.on_log(trainer, layer_metrics)

    def on_epoch_end(self, trainer, scalars):
        for c in self.callbacks:
            c.on_epoch_end(trainer, scalars)

    def on_event(self, trainer, kind, payload):
        for c in self.callbacks:
            c.on_event(trainer, kind, payload)

    def on_run_end(self, trainer, status, summary, error):
        for c in self.callbacks:
            c.on_run_end(trainer, status, summary, error)
