"""Training methods as small strategies the one training loop calls: MSQ and uniform QAT here,
BSQ and multi-bit register their own (``register_method``).

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
from msq.hessian import estimate_layer_traces
from msq.quant import calibrate_scales_, quant_layers, quantize_, searched_layers, set_mode_
from msq.regularize import lam_at, lsb_penalty
from msq.training.pruning import LayerState, decide_prunes, prune_candidates
from msq.training.schedule import Phase
from msq.training.distributed import all_gather_rows, all_reduce_sum, broadcast_object
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


class MSQMethod(Method):
    """pretrain (float) -> search (LSB L1 on, pruning on) -> finetune (λ off, bits frozen)."""
    name = "msq"

    def phases(self) -> list[Phase]:
        t = self.cfg.train
        return [
            Phase("pretrain", t.pretrain_epochs, t.lr, "cosine", quantized=False),
            Phase("search", t.search_epochs, t.search_lr or t.lr, "constant", regularize=True, prune=True),
            Phase("finetune", t.finetune_epochs, t.finetune_lr or t.lr / 4, "cosine"),
        ]

    def regularizer(self, trainer: "Trainer", phase: Phase) -> Optional[torch.Tensor]:
        if not phase.regularize:
            return None
        lam = lam_at(trainer.state.phase_step, self.cfg.reg, trainer.state.lam)
        trainer.state.lam_effective = lam
        if lam == 0.0:
            return None
        return lam * lsb_penalty([layer for _, layer in searched_layers(trainer.model)], self.cfg.reg.norm)

    def end_of_epoch(self, trainer: "Trainer", phase: Phase, phase_epoch: int) -> None:
        if phase.prune and (phase_epoch + 1) % self.cfg.prune.every == 0:
            self.prune_step(trainer)

    def prune_step(self, trainer: "Trainer") -> list:
        """Measure densities, estimate sensitivities if a layer is about to drop, apply the decisions."""
        layers = quant_layers(trainer.model)
        signals = layer_signals(layers)
        states = [LayerState(i, name, layer.weight.numel(), layer.bits, layer.fixed, signals["lsb_density"][i])
                  for i, (name, layer) in enumerate(layers)]
        sensitivities = None
        # The Hessian is only needed to choose k for layers that drop now, so estimate only then.
        if self.cfg.hessian.enabled and prune_candidates(states, self.cfg.prune):
            estimate = self.estimate_sensitivity(trainer)
            sensitivities = dict(enumerate(estimate.sensitivities))
        # replicated weights give every rank the same decisions; rank 0's are broadcast to be certain,
        # and whether every rank had reached the same ones is recorded with each prune event
        mine = decide_prunes(states, self.cfg.prune, sensitivities)
        decisions = broadcast_object(trainer.dist, mine)
        disagreeing = all_reduce_sum(trainer.dist, [float(mine != decisions)])[0]
        for decision in decisions:
            layers[decision.index][1].bits = decision.new_bits
            payload = decision.as_dict()
            if trainer.dist.enabled:
                payload["ranks_agree"] = disagreeing == 0
            trainer.emit_event("prune", payload)
        return decisions

    def estimate_sensitivity(self, trainer: "Trainer"):
        h = self.cfg.hessian
        batches = trainer.fixed_batches(h.batches, h.batch_size, seed=trainer.state.epoch)
        estimate = estimate_layer_traces(trainer.model, batches, probes=h.probes,
                                         seed=self.cfg.train.seed + trainer.state.step + 104729 * trainer.dist.rank,
                                         device=trainer.device)
        estimate.samples = all_gather_rows(trainer.dist, estimate.samples)   # every rank's probes
        trainer.timings["hessian"] = trainer.timings.get("hessian", 0.0) + estimate.seconds
        trainer.latest_sensitivity = estimate
        trainer.log_layer_metrics({"sensitivity": estimate.sensitivities,
                                   "sensitivity_se": estimate.sensitivity_std_errors})
        trainer.emit_event("hessian", {"seconds": estimate.seconds, "samples": int(estimate.samples.shape[0]),
                                       "mean_sensitivity": sum(estimate.sensitivities) / len(estimate.sensitivities)})
        return estimate


class UniformMethod(Method):
    """Uniform QAT reference point: every searched layer at ``uniform_bits``; no regularizer, no pruning.
    Same epoch budget as MSQ: float pretraining, then quantization-aware training."""
    name = "uniform"

    def prepare(self, trainer: "Trainer") -> None:
        quantize_(trainer.model, self.cfg.quant, searched_bits=self.cfg.uniform_bits)

    def phases(self) -> list[Phase]:
        t = self.cfg.train
        return [
            Phase("pretrain", t.pretrain_epochs, t.lr, "cosine", quantized=False),
            Phase("qat", t.search_epochs + t.finetune_epochs, t.search_lr or t.lr, "cosine"),
        ]


_METHODS: dict[str, type] = {"msq": MSQMethod, "uniform": UniformMethod}
# Methods that live in their own packages register themselves when imported.
_METHOD_MODULES = {"bsq": "msq.baselines.bsq", "multibit": "msq.multibit"}


def register_method(name: str, cls: type) -> None:
    _METHODS[name] = cls


def create_method(cfg: RunConfig) -> Method:
    if cfg.method not in _METHODS and cfg.method in _METHOD_MODULES:
        importlib.import_module(_METHOD_MODULES[cfg.method])
    if cfg.method not in _METHODS:
        raise ConfigError(f"run.method = {cfg.method!r} is not available here: allowed "
                          f"{', '.join(sorted(_METHODS))}")
    return _METHODS[cfg.method](cfg)
