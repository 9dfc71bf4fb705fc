"""What a training method supplies to the one training loop (``msq.training.trainer.Trainer``).

The loop owns phases, epochs, steps, the optimizer, evaluation, checkpoints and the callbacks; a
method fills in hooks:

    prepare_model(model, example)    quantize the model its way (also what rebuilds a saved run)
    on_phase_start(trainer, phase)   modes, scales, calibrations, conversions
    start_epoch / finish_epoch       around each training epoch (multi-bit: coresets, timing)
    epoch_batches(trainer, phase)    what one epoch iterates over, and how many steps that is
    train_step(trainer, phase, batch)   forward and backward of one step (the loop then steps the optimizer)
    regularizer(trainer, phase)      the penalty the default train_step adds to the task loss
    after_step(trainer, phase)       right after the optimizer step (BSQ clamps its planes)
    end_of_epoch(trainer, phase, e)  after validation (MSQ prunes, BSQ re-quantizes)
    evaluate / epoch_scalars / layer_metrics / summary_extra   what is measured and logged
    state_dict / load_state_dict     what a checkpoint keeps of the method

Its phases come from its registration (``msq.methods.registry.MethodSpec.phases``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Iterable, Optional

import torch
import torch.nn.functional as F

from msq.accounting import model_size_bytes
from msq.config import RunConfig
from msq.data import example_input
from msq.methods.registry import get_method
from msq.methods.signals import layer_signals
from msq.quant import calibrate_scales_, quant_layers, quantize_, set_mode_
from msq.quant.inventory import float_param_count
from msq.training.schedule import Phase

if TYPE_CHECKING:  # pragma: no cover
    from torch import nn

    from msq.training.trainer import Trainer


@dataclass
class StepResult:
    """One training step as the loop logs it: the scalars, and this step's share of the epoch's
    training loss and accuracy (summed over every sample the step saw)."""
    loss: float
    task_loss: float
    reg: float = 0.0
    extra: dict = field(default_factory=dict)     # more per-step scalars (multi-bit: loss per width)
    loss_sum: float = 0.0
    correct: int = 0
    seen: int = 0


class Method:
    """Default behaviour: quantize_, float pretraining, then quantized phases; no regularizer."""
    name = "base"

    def __init__(self, cfg: RunConfig) -> None:
        self.cfg = cfg
        self.scales_calibrated = False

    def phases(self) -> list[Phase]:
        """The phases of this method, in order (its registration's plan)."""
        return get_method(self.cfg.method).phases(self.cfg)

    # -- set-up ----------------------------------------------------------------------------------
    def prepare_model(self, model: "nn.Module", example: torch.Tensor) -> None:
        """Put the method's layers into a freshly built model (training and rebuilding a run alike)."""
        quantize_(model, self.cfg.quant)

    def prepare(self, trainer: "Trainer") -> None:
        self.prepare_model(trainer.model, example_input(trainer.data, batch=2))

    def on_phase_start(self, trainer: "Trainer", phase: Phase) -> None:
        if phase.quantized and not self.scales_calibrated:
            calibrate_scales_(trainer.model)  # the grid is set once, from the (pre)trained weights
            self.scales_calibrated = True
        set_mode_(trainer.model, "quant" if phase.quantized else "float")

    # -- one epoch of training -------------------------------------------------------------------
    def start_epoch(self, trainer: "Trainer", phase: Phase) -> None:
        """Before the epoch's first step."""

    def finish_epoch(self, trainer: "Trainer", phase: Phase) -> None:
        """After the epoch's last step (also when a stop or an error ended it early)."""

    def epoch_batches(self, trainer: "Trainer", phase: Phase) -> tuple[Iterable, int]:
        """(what the epoch iterates over, steps per epoch): the training loader by default."""
        loader = trainer.train_loader(epoch=trainer.state.epoch)
        return loader, len(loader)

    def regularizer(self, trainer: "Trainer", phase: Phase) -> Optional[torch.Tensor]:
        return None

    def train_step(self, trainer: "Trainer", phase: Phase, batch) -> StepResult:
        """Forward one batch, add the regularizer, check the loss, backward."""
        x, y = (t.to(trainer.device, non_blocking=True) for t in batch)
        logits = trainer.train_model(x)
        task_loss = F.cross_entropy(logits, y)
        reg = self.regularizer(trainer, phase)
        loss = task_loss if reg is None else task_loss + reg
        trainer.check_finite(loss, phase)
        loss.backward()
        task_value = float(task_loss.detach())
        return StepResult(loss=float(loss.detach()), task_loss=task_value,
                          reg=0.0 if reg is None else float(reg.detach()), loss_sum=task_value * y.numel(),
                          correct=int((logits.argmax(1) == y).sum()), seen=y.numel())

    def after_step(self, trainer: "Trainer", phase: Phase) -> None:
        """Right after the optimizer's step."""

    def end_of_epoch(self, trainer: "Trainer", phase: Phase, phase_epoch: int) -> None:
        """Called after each epoch's validation, before the checkpoint."""

    # -- what is measured and logged -------------------------------------------------------------
    def evaluate(self, trainer: "Trainer") -> dict:
        """Validation metrics of the model as trained: {"acc": percent, "loss": mean CE, ...}."""
        return trainer.evaluate_model()

    def epoch_scalars(self, trainer: "Trainer", val: dict) -> dict:
        """Extra per-epoch scalars for the callbacks (e.g. accuracy per width)."""
        return {}

    def summary_extra(self, trainer: "Trainer") -> dict:
        """Extra fields for result.json."""
        return {}

    def layer_metrics(self, trainer: "Trainer") -> dict:
        return layer_signals(quant_layers(trainer.model))

    def deployed_size_bytes(self, model: "nn.Module") -> float:
        """Bytes of the model as deployed at its current widths (METHODS §6): what the exporters predict."""
        layers = quant_layers(model)
        return model_size_bytes([layer.weight.numel() for _, layer in layers], [layer.bits for _, layer in layers],
                                float_param_count(model))

    # -- checkpoints -----------------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {"scales_calibrated": self.scales_calibrated}

    def load_state_dict(self, state: dict) -> None:
        self.scales_calibrated = bool(state.get("scales_calibrated", False))

    def restore(self, model: "nn.Module", payload: dict) -> None:
        """Load a checkpoint's method state, then its model state, into a model this method prepared
        (resume and every rebuild of a saved run go through here)."""
        self.load_state_dict(payload.get("method") or {})
        model.load_state_dict(payload["model"])
