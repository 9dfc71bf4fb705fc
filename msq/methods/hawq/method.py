"""The HAWQ-style baseline (``--method hawq``): widths chosen once from the float model, then QAT.

pretrain (float) -> allocate (Hutchinson traces on the float model, Ω_l(b) for every width from
``prune.min_bits`` to ``quant.init_bits``, exact knapsack for the budget) -> "qat" and "finetune" at
that allocation with MSQ's schedule (``fixed_width_phases``). It is the peer an engineer would pick
instead of a search: same budget, same epochs, same learning rates, widths fixed from the start.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from msq.errors import ConfigError
from msq.hessian import estimate_layer_traces
from msq.quant import quant_layers, set_mode_
from msq.methods.budget import budget_summary
from msq.methods.pricing import width_price
from msq.methods.base import Method
from msq.training.schedule import Phase
from msq.methods.knapsack import allocate

if TYPE_CHECKING:  # pragma: no cover
    from msq.training.trainer import Trainer


class HAWQMethod(Method):
    name = "hawq"

    def __init__(self, cfg) -> None:
        super().__init__(cfg)
        if cfg.prune.budget_bits is None:
            raise ConfigError("run.method = 'hawq' needs a budget: set prune.target_avg_bits (--target-bits) or "
                              "prune.target_compression (--target-compression)")
        self.allocation: dict = {}

    def on_phase_start(self, trainer: "Trainer", phase: Phase) -> None:
        super().on_phase_start(trainer, phase)
        if phase.quantized and not self.allocation:
            self.allocate_(trainer)

    @torch.no_grad()
    def _omega(self, layers, sensitivities) -> list[dict[int, float]]:
        widths = range(self.cfg.prune.min_bits, self.cfg.quant.init_bits + 1)
        table = []
        for (_, layer), sens in zip(layers, sensitivities):
            options = [layer.bits] if layer.fixed else widths
            w = layer.weight.detach()
            table.append({b: width_price(sens, w, w, layer.scale, b, layer.grid) for b in options})
        return table

    def allocate_(self, trainer: "Trainer") -> None:
        """Estimate traces on the float weights, price every width, solve the knapsack, set the widths."""
        layers = quant_layers(trainer.model)
        h = self.cfg.hessian
        set_mode_(trainer.model, "float")
        try:
            watch = [i for i, (_, layer) in enumerate(layers) if not layer.fixed]
            estimate = estimate_layer_traces(trainer.model, trainer.fixed_batches(h.batches, h.batch_size, seed=0),
                                             probes=h.probes, seed=self.cfg.train.seed, device=trainer.device,
                                             target_rse=h.target_rse, watch=watch or None)
        finally:
            set_mode_(trainer.model, "quant")
        trainer.timings["hessian"] = trainer.timings.get("hessian", 0.0) + estimate.seconds
        trainer.latest_sensitivity = estimate
        trainer.log_layer_metrics({"sensitivity": estimate.sensitivities,
                                   "sensitivity_se": estimate.sensitivity_std_errors})
        params = [layer.weight.numel() for _, layer in layers]
        omega = self._omega(layers, estimate.sensitivities)
        bits = allocate(params, omega, self.cfg.prune.budget_bits * sum(params))
        for index, ((name, layer), new) in enumerate(zip(layers, bits)):
            if new != layer.bits:
                trainer.emit_event("prune", {"index": index, "fqn": name, "old_bits": layer.bits, "new_bits": new,
                                             "k": layer.bits - new, "density": None,
                                             "sensitivity": estimate.sensitivities[index],
                                             "mean_sensitivity": None, "forced": True})
                layer.bits = new
        self.allocation = {name: b for (name, _), b in zip(layers, bits)}
        trainer.emit_event("allocation", {"bits": bits, "omega": [{str(k): v for k, v in o.items()} for o in omega],
                                          "hessian_samples": int(estimate.samples.shape[0])})

    def summary_extra(self, trainer: "Trainer") -> dict:
        return {**budget_summary(self.cfg, trainer), "allocation": dict(self.allocation)}

    def state_dict(self) -> dict:
        return {**super().state_dict(), "allocation": dict(self.allocation)}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.allocation = dict(state.get("allocation", {}))
