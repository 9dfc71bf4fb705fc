"""Training methods as small strategies the one training loop calls: uniform QAT here; MSQ
(``msq_search.py``), BSQ, HAWQ-style and multi-bit register their own (``register_method``).

A method decides the phases, prepares the model, adds its regularizer to the loss, and acts at the
end of an epoch (MSQ prunes LSBs there). Its ``state_dict`` goes into every checkpoint.
"""
from __future__ import annotations

import abc
import importlib
from typing import TYPE_CHECKING, Optional

import torch

from msq.config import RunConfig
from msq.errors import ConfigError
from msq.quant import calibrate_scales_, quant_layers, quantize_, set_mode_
from msq.training.schedule import Phase
from msq.training.signals import layer_signals

if TYPE_CHECKING:  # pragma: no cover
    from msq.training.trainer import Trainer


class Method(abc.ABC):
    """Default behaviour: quantize_, float pretraining, then quantized phases; no regularizer."""
    name = "base"

    def __init__(self, cfg: RunConfig) -> None:
        self.cfg = cfg
        self.scales_calibrated = False

    @abc.abstractmethod
    def phases(self) -> list[Phase]:
        """The phases of this method, in order."""

    def prepare(self, trainer: "Trainer") -> None:
        quantize_(trainer.model, self.cfg.quant)

    def on_phase_start(self, trainer: "Trainer", phase: Phase) -> None:
        if phase.quantized and not self.scales_calibrated:
            calibrate_scales_(trainer.model)  # the grid is set once, from the (pre)trained weights
            self.scales_calibrated = True
        set_mode_(trainer.model, "quant" if phase.quantized else "float")

    def regularizer(self, trainer: "Trainer", phase: Phase) -> Optional[torch.Tensor]:
        return None

    def train_epoch(self, trainer: "Trainer", phase: Phase) -> None:
        """One epoch of training; methods with their own step (multi-bit) override this."""
        trainer.run_standard_epoch(phase)

    def evaluate(self, trainer: "Trainer") -> dict:
        """Validation metrics of the model as trained: {"acc": percent, "loss": mean CE, ...}."""
        return trainer.evaluate_model()

    def epoch_scalars(self, trainer: "Trainer", val: dict) -> dict:
        """Extra per-epoch scalars for the callbacks (e.g. accuracy per width)."""
        return {}

    def summary_extra(self, trainer: "Trainer") -> dict:
        """Extra fields for result.json."""
        return {}

    def end_of_epoch(self, trainer: "Trainer", phase: Phase, phase_epoch: int) -> None:
        """Called after each epoch's validation, before the checkpoint."""

    def layer_metrics(self, trainer: "Trainer") -> dict:
        return layer_signals(quant_layers(trainer.model))

    def state_dict(self) -> dict:
        return {"scales_calibrated": self.scales_calibrated}

    def load_state_dict(self, state: dict) -> None:
        self.scales_calibrated = bool(state.get("scales_calibrated", False))


def fixed_width_phases(cfg: RunConfig) -> list[Phase]:
    """The schedule of every fixed-allocation reference (uniform, HAWQ-style): MSQ's own, epoch for
    epoch and learning rate for learning rate -- float pretraining, then the search phase's epochs
    at its constant rate ("qat": quantized, no regularizer, no pruning), then MSQ's finetune -- so a
    comparison differs only in how the widths were chosen."""
    t = cfg.train
    return [
        Phase("pretrain", t.pretrain_epochs, t.lr, "cosine", quantized=False),
        Phase("qat", t.search_epochs, t.search_lr or t.lr, "constant"),
        Phase("finetune", t.finetune_epochs, t.finetune_lr or t.lr / 4, "cosine"),
    ]


class UniformMethod(Method):
    """Uniform QAT reference point: every searched layer at ``uniform_bits``; no regularizer, no pruning,
    on MSQ's schedule (``fixed_width_phases``)."""
    name = "uniform"

    def prepare(self, trainer: "Trainer") -> None:
        quantize_(trainer.model, self.cfg.quant, searched_bits=self.cfg.uniform_bits)

    def phases(self) -> list[Phase]:
        return fixed_width_phases(self.cfg)


_METHODS: dict[str, type] = {"uniform": UniformMethod}
# Methods that live in their own modules register themselves when imported.
_METHOD_MODULES = {"msq": "msq.training.msq_search", "bsq": "msq.baselines.bsq", "multibit": "msq.multibit",
                   "hawq": "msq.baselines.hawq"}


def register_method(name: str, cls: type) -> None:
    _METHODS[name] = cls


def create_method(cfg: RunConfig) -> Method:
    if cfg.method not in _METHODS and cfg.method in _METHOD_MODULES:
        importlib.import_module(_METHOD_MODULES[cfg.method])
    if cfg.method not in _METHODS:
        raise ConfigError(f"run.method = {cfg.method!r} is not available here: allowed "
                          f"{', '.join(sorted(_METHODS))}")
    return _METHODS[cfg.method](cfg)
