"""``--method bsq``: BSQ as a training method the one loop runs (METHODS §7).

    pretrain  float, like MSQ (the layers are ordinary quantized layers in float mode)
    search    searched layers become bit-plane layers (planes from the pretrained weights' codes at
              quant.init_bits); loss + decay · group Lasso; planes clamped to [0, 2] after every step;
              every bsq.requant_every epochs (and at the end of the phase) re-quantize: round to
              {0, 1}, grow on overflow, drop all-zero MSB/LSB planes, rebuild the optimizer
    finetune  bits frozen; the planes keep training without the regularizer (forward clamped to the
              n-bit range); re-quantized once more at the end so the final model is binary planes

First/last (and quant.fixed) layers keep the round-clamp quantizer at quant.fixed_bits, as under MSQ.
The decay is ``trainer.state.lam`` during the search, so the dashboard's live strength control steers
it like MSQ's λ; it starts at bsq.decay.
"""
from __future__ import annotations

import time
from typing import TYPE_CHECKING, Optional

import torch
from torch import nn

from msq.methods.bsq.layers import is_bsq_layer, to_bsq
from msq.methods.bsq.regularizer import group_lasso_penalty
from msq.functional import weight_codes
from msq.quant import quant_layers, searched_layers
from msq.methods.base import Method
from msq.training.schedule import Phase
from msq.methods.signals import layer_signals

if TYPE_CHECKING:  # pragma: no cover
    from msq.training.trainer import Trainer


class BSQMethod(Method):
    name = "bsq"

    def __init__(self, cfg) -> None:
        super().__init__(cfg)
        self.converted = False       # searched layers are bit-plane layers (from the search phase on)
        self.decay_applied = False   # trainer.state.lam was set to bsq.decay at the first search epoch
        self._model: Optional[nn.Module] = None
        self._layers: list = []

    # -- set-up ---------------------------------------------------------------------------------
    def prepare_model(self, model: nn.Module, example) -> None:
        super().prepare_model(model, example)     # quantize_: round-clamp layers, trained in float mode first
        self._model = model

    def convert_(self, model: nn.Module) -> None:
        """Searched layers -> bit-plane layers at their current width (quant.init_bits)."""
        for name, layer in searched_layers(model):
            if not is_bsq_layer(layer):
                parent_name, _, child = name.rpartition(".")
                parent = model.get_submodule(parent_name) if parent_name else model
                setattr(parent, child, to_bsq(layer, layer.bits, self.cfg.bsq.max_bits))
        self._layers = [layer for _, layer in quant_layers(model) if is_bsq_layer(layer)]
        self.converted = True

    def on_phase_start(self, trainer: "Trainer", phase: Phase) -> None:
        super().on_phase_start(trainer, phase)
        if phase.quantized and not self.converted:
            if trainer.state.float_acc is None:   # no pretraining: measure the float weights while they exist
                trainer.state.float_acc = trainer._float_accuracy()
            self.convert_(trainer.model)
        if phase.regularize and not self.decay_applied:
            trainer.state.lam = self.cfg.bsq.decay
            self.decay_applied = True
        for layer in self._layers:
            layer.frozen = not phase.regularize

    # -- training -------------------------------------------------------------------------------
    def regularizer(self, trainer: "Trainer", phase: Phase) -> Optional[torch.Tensor]:
        if not phase.regularize:
            return None
        trainer.state.lam_effective = decay = trainer.state.lam
        return decay * group_lasso_penalty(self._layers) if decay > 0 else None

    @torch.no_grad()
    def after_step(self, trainer: "Trainer", phase: Phase) -> None:
        """Planes live in [0, 2] (BSQ): above 1 is a carry that re-quantization resolves."""
        for layer in self._layers:
            layer.planes.clamp_(0.0, 2.0)       # one pass per layer (two foreach passes measured slower)

    def end_of_epoch(self, trainer: "Trainer", phase: Phase, phase_epoch: int) -> None:
        last = phase_epoch + 1 == phase.epochs
        if phase.regularize and ((phase_epoch + 1) % self.cfg.bsq.requant_every == 0 or last):
            self.requantize(trainer, adjust=True)
        elif phase.name == "finetune" and last:
            self.requantize(trainer, adjust=False)

    def requantize(self, trainer: "Trainer", adjust: bool) -> list:
        """Re-quantize every bit-plane layer; "prune"/"grow" events per width change, one "requantize"."""
        started = time.perf_counter()
        results = []
        for index, (name, layer) in enumerate(quant_layers(trainer.model)):
            if not is_bsq_layer(layer):
                continue
            density = layer.bit_signals()["lsb_density"]
            r = layer.requantize_(adjust)
            results.append(r)
            change = {"index": index, "fqn": name, "old_bits": r.old_bits, "new_bits": r.bits,
                      "dropped_lsb": r.dropped_lsb, "dropped_msb": r.dropped_msb, "grown": r.grown}
            if r.bits < r.old_bits:
                trainer.emit_event("prune", {**change, "k": r.old_bits - r.bits, "density": density,
                                             "sensitivity": None, "mean_sensitivity": None})
            elif r.bits > r.old_bits:
                trainer.emit_event("grow", change)
        trainer.rebuild_optimizer()          # the planes are new tensors, some of new shapes
        trainer.emit_event("requantize", {
            "phase": trainer.state.phase, "adjust": adjust,
            "bits": [layer.bits for _, layer in quant_layers(trainer.model)],
            "grown": sum(r.grown for r in results), "dropped_lsb": sum(r.dropped_lsb for r in results),
            "dropped_msb": sum(r.dropped_msb for r in results), "clamped": sum(r.clamped for r in results),
            "seconds": time.perf_counter() - started})
        return results

    # -- what is logged -------------------------------------------------------------------------
    def layer_metrics(self, trainer: "Trainer") -> dict:
        layers = quant_layers(trainer.model)
        metrics = layer_signals(layers)      # BSQ layers measure themselves on their grid (bit_signals)
        metrics["msb_density"] = [layer.msb_density() if is_bsq_layer(layer) else _top_bit_density(layer)
                                  for _, layer in layers]
        return metrics

    def summary_extra(self, trainer: "Trainer") -> dict:
        layers = [layer for _, layer in quant_layers(trainer.model)]
        params = [layer.weight.numel() for layer in layers]
        with_sign = [layer.bits + (1 if is_bsq_layer(layer) else 0) for layer in layers]
        return {"bsq": {"decay": trainer.state.lam, "requant_every": self.cfg.bsq.requant_every,
                        "max_bits": self.cfg.bsq.max_bits,
                        # n magnitude planes + a sign bit: what storing BSQ's codes really takes
                        "average_bits_with_sign": sum(p * b for p, b in zip(params, with_sign)) / sum(params)}}

    def state_dict(self) -> dict:
        return {**super().state_dict(), "converted": self.converted, "decay_applied": self.decay_applied}

    def load_state_dict(self, state: dict) -> None:
        """Runs before the model's state is loaded: convert first, so the planes' keys exist (their
        shapes follow the checkpoint, see ``BSQMixin._load_from_state_dict``)."""
        super().load_state_dict(state)
        self.decay_applied = bool(state.get("decay_applied", False))
        if state.get("converted") and self._model is not None:
            self.convert_(self._model)


@torch.no_grad()
def _top_bit_density(layer) -> float:
    """For a round-clamp layer: fraction of signed codes that need the top magnitude bit."""
    codes = weight_codes(layer.weight, layer.scale, layer.bits, layer.grid)
    return float((codes.abs() >= 2 ** max(layer.bits - 2, 0)).float().mean())
