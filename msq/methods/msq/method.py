"""MSQ: pretrain (float) -> search (LSB L1 on, pruning on) -> finetune (λ off, bits frozen).

At every prune check of the search (METHODS §3):
- each layer's LSB density is the mean over the steps logged since the previous check, so one
  noisy step cannot decide a prune (the density hovers near α for many steps on real data);
- without a budget, layers whose density is <= α drop 1 LSB, or 2 where the Hessian says the layer
  is less sensitive than the mean by more than the estimate's error;
- with a budget (``prune.target_avg_bits`` / ``target_compression``) the same zero-LSB prunes come
  first, then the cheapest bits per ``msq.methods.budget`` until the average meets the path to
  the target, and λ is steered by how much had to be forced.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Optional

import torch

from msq.accounting import average_bits
from msq.functional import fake_quantize
from msq.hessian import estimate_layer_traces
from msq.quant import quant_layers, searched_layers
from msq.regularize import lam_at, lsb_penalty
from msq.methods.budget import Move, budget_summary, path_ceiling, plan_moves, steer_lam
from msq.methods.pricing import width_price
from msq.training.distributed import all_gather_rows, all_reduce_sum, broadcast_object
from msq.methods.base import Method
from msq.methods.msq.pruning import LayerState, PruneDecision, decide_prunes, prune_candidates
from msq.training.schedule import Phase
from msq.methods.signals import layer_signals

if TYPE_CHECKING:  # pragma: no cover
    from msq.training.trainer import Trainer


class MSQMethod(Method):
    name = "msq"

    def __init__(self, cfg) -> None:
        super().__init__(cfg)
        self.density_sum: list[float] = []
        self.density_count = 0
        self.checks_done = 0
        self.start_avg: Optional[float] = None

    def regularizer(self, trainer: "Trainer", phase: Phase) -> Optional[torch.Tensor]:
        if not phase.regularize:
            return None
        lam = lam_at(trainer.state.phase_step, self.cfg.reg, trainer.state.lam)
        trainer.state.lam_effective = lam
        if lam == 0.0:
            return None
        layers = [layer for _, layer in searched_layers(trainer.model)]
        return lam * lsb_penalty(layers, self.cfg.reg.norm, min_bits=self.cfg.prune.min_bits)

    def layer_metrics(self, trainer: "Trainer") -> dict:
        metrics = super().layer_metrics(trainer)
        if trainer.state.phase == "search":     # densities the next prune check averages over
            density = metrics["lsb_density"]
            if len(self.density_sum) != len(density):
                self.density_sum, self.density_count = [0.0] * len(density), 0
            self.density_sum = [a + b for a, b in zip(self.density_sum, density)]
            self.density_count += 1
        return metrics

    def end_of_epoch(self, trainer: "Trainer", phase: Phase, phase_epoch: int) -> None:
        if phase.prune and (phase_epoch + 1) % self.cfg.prune.every == 0:
            self.prune_step(trainer)

    # -- one prune check -------------------------------------------------------------------------
    def prune_step(self, trainer: "Trainer") -> list:
        """Measure (mean) densities, estimate sensitivities when needed, decide, apply, steer λ."""
        layers = quant_layers(trainer.model)
        densities = self._mean_densities(layer_signals(layers)["lsb_density"])
        states = [LayerState(i, name, layer.weight.numel(), layer.bits, layer.fixed, densities[i])
                  for i, (name, layer) in enumerate(layers)]
        budget = self.cfg.prune.budget_bits
        if self.start_avg is None:
            self.start_avg = average_bits([s.params for s in states], [s.bits for s in states])
        estimate = None
        # The Hessian is needed to choose k for layers that drop now, and, with a budget, to price bits.
        if self.cfg.hessian.enabled and (budget is not None or prune_candidates(states, self.cfg.prune)):
            estimate = self.estimate_sensitivity(trainer)
        mine = self._decide(trainer, layers, states, estimate, budget)
        # replicated weights give every rank the same decisions; rank 0's are broadcast to be certain,
        # and whether every rank had reached the same ones is recorded with each prune event
        decisions = broadcast_object(trainer.dist, mine)
        disagreeing = all_reduce_sum(trainer.dist, [float(mine != decisions)])[0]
        for decision in decisions:
            layers[decision.index][1].bits = decision.new_bits
            payload = decision.as_dict()
            if trainer.dist.enabled:
                payload["ranks_agree"] = disagreeing == 0
            trainer.emit_event("prune", payload)
        self.checks_done += 1
        if budget is not None:
            self._steer(trainer, decisions, [layer.bits for _, layer in layers], [s.params for s in states], budget)
        return decisions

    def _mean_densities(self, current: list[float]) -> list[float]:
        if self.density_count == 0 or len(self.density_sum) != len(current):
            mean = list(current)
        else:
            mean = [v / self.density_count for v in self.density_sum]
        self.density_sum, self.density_count = [0.0] * len(current), 0
        return mean

    def _decide(self, trainer, layers, states, estimate, budget) -> list[PruneDecision]:
        sens = dict(enumerate(estimate.sensitivities)) if estimate else None
        errors = dict(enumerate(estimate.sensitivity_std_errors)) if estimate else None
        free = decide_prunes(states, self.cfg.prune, sens, errors, self.cfg.hessian.z)
        if budget is None:
            return free
        checks = max(1, self.cfg.train.search_epochs // self.cfg.prune.every)
        ceiling = path_ceiling(self.start_avg, budget, self.checks_done + 1, checks, self.cfg.prune.reach_fraction)
        weights = [layer.weight.detach() for _, layer in layers]
        forward = [fake_quantize(w, layer.scale, layer.bits, layer.grid) for w, (_, layer) in zip(weights, layers)]

        def width_cost(i: int, b: int) -> float:
            # ΔL ≈ Tr/N · ||Q_b(W) - Q_n(W)||² (msq.methods.pricing); a trace within its error of 0 (or
            # below it) is priced at one standard error, not as free
            layer = layers[i][1]
            if b == layer.bits:
                return 0.0
            s = max(sens[i], errors[i] if errors[i] == errors[i] else 0.0, 0.0) if sens else 1.0
            return width_price(s, weights[i], forward[i], layer.scale, b, layer.grid)

        moves = plan_moves([s.params for s in states], [s.bits for s in states], [not s.fixed for s in states],
                           self.cfg.prune.min_bits, ceiling, budget, width_cost,
                           free=[Move(d.index, d.old_bits, d.new_bits, 0.0, False) for d in free],
                           tolerance=self.cfg.prune.landing_tolerance)
        mean = free[0].mean_sensitivity if free else _searched_mean(states, sens)
        final: dict[int, PruneDecision] = {}
        for move in moves:       # one decision per layer: its old width to its final new width
            state = states[move.index]
            first = final.get(move.index)
            old = first.old_bits if first else state.bits
            final[move.index] = PruneDecision(move.index, state.fqn, old, move.new_bits, old - move.new_bits,
                                              state.density, sens.get(move.index) if sens else None, mean,
                                              forced=move.forced or bool(first and first.forced))
        return sorted(final.values(), key=lambda d: d.index)

    def _steer(self, trainer, decisions, bits_now, params, budget) -> None:
        reached = average_bits(params, bits_now) <= budget + 1e-9
        forced = any(d.forced for d in decisions)
        new = steer_lam(trainer.state.lam, forced, reached, self.cfg.prune.lam_gain)
        if new != trainer.state.lam:
            trainer.set_lam(new, source="budget")

    def estimate_sensitivity(self, trainer: "Trainer"):
        h = self.cfg.hessian
        batches = trainer.fixed_batches(h.batches, h.batch_size, seed=trainer.state.epoch)
        watch = [i for i, (_, layer) in enumerate(quant_layers(trainer.model)) if not layer.fixed]
        # with several ranks every rank must take the same number of batches: no early stop there
        target = None if trainer.dist.enabled else h.target_rse
        estimate = estimate_layer_traces(trainer.model, batches, probes=h.probes,
                                         seed=self.cfg.train.seed + trainer.state.step + 104729 * trainer.dist.rank,
                                         device=trainer.device, target_rse=target, watch=watch or None)
        estimate.samples = all_gather_rows(trainer.dist, estimate.samples)   # every rank's probes
        trainer.timings["hessian"] = trainer.timings.get("hessian", 0.0) + estimate.seconds
        trainer.latest_sensitivity = estimate
        trainer.log_layer_metrics({"sensitivity": estimate.sensitivities,
                                   "sensitivity_se": estimate.sensitivity_std_errors})
        trainer.emit_event("hessian", {"seconds": estimate.seconds, "samples": int(estimate.samples.shape[0]),
                                       "mean_sensitivity": sum(estimate.sensitivities) / len(estimate.sensitivities),
                                       "target_rse": estimate.extra.get("target_rse"),
                                       "target_met": estimate.extra.get("target_met"),
                                       "max_rse": max((estimate.relative_std_errors()[i] for i in watch), default=None)})
        return estimate

    def summary_extra(self, trainer: "Trainer") -> dict:
        return budget_summary(self.cfg, trainer)

    def state_dict(self) -> dict:
        return {**super().state_dict(), "density_sum": self.density_sum, "density_count": self.density_count,
                "checks_done": self.checks_done, "start_avg": self.start_avg}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.density_sum = list(state.get("density_sum", []))
        self.density_count = int(state.get("density_count", 0))
        self.checks_done = int(state.get("checks_done", 0))
        self.start_avg = state.get("start_avg")


def _searched_mean(states: list[LayerState], sens: Optional[dict[int, float]]) -> Optional[float]:
    if not sens:
        return None
    values = [sens[s.index] for s in states if not s.fixed and s.index in sens]
    return sum(values) / len(values) if values else None


