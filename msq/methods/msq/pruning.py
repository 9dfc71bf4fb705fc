"""LSB pruning (METHODS §3): drop a layer's LSB(s) once they have become (almost) all zero.

A searched layer with n_l > min_bits whose LSB density d_l <= α loses k_l LSBs: n_l <- n_l - k_l
on the same scale (nested grids: the new step is 2^k times the old; nothing is re-scaled). The
master weights and the optimizer state are untouched — no tensor changes shape.

Hessian-aware (MSQ): a layer whose sensitivity Tr(H_l)/N_l is below the mean over the searched
layers is insensitive and drops k = 2 at once (if n_l - 2 >= min_bits); the others drop k = 1.
Given the estimate's standard errors, "below" means below by more than its error:
Tr_l/N_l + z se_l < mean, so a noisy estimate never decides k = 2 on its point value.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Optional

from msq.accounting import average_bits
from msq.config import PruneConfig


@dataclass
class LayerState:
    """What the pruning decision needs to know of one quantized layer."""
    index: int
    fqn: str
    params: int
    bits: int
    fixed: bool
    density: float


@dataclass
class PruneDecision:
    index: int
    fqn: str
    old_bits: int
    new_bits: int
    k: int
    density: float
    sensitivity: Optional[float]
    mean_sensitivity: Optional[float]
    forced: bool = False      # taken to meet a budget (msq.methods.budget), not because the LSBs were zero

    def as_dict(self) -> dict:
        return asdict(self)


def prune_candidates(layers: list[LayerState], cfg: PruneConfig) -> list[LayerState]:
    """Searched layers above the minimum width whose LSB density is at or below the threshold α."""
    return [s for s in layers if not s.fixed and s.bits > cfg.min_bits and s.density <= cfg.threshold]


def budget_reached(layers: list[LayerState], cfg: PruneConfig) -> bool:
    if cfg.target_avg_bits is None:
        return False
    return average_bits([s.params for s in layers], [s.bits for s in layers]) <= cfg.target_avg_bits


def decide_prunes(layers: list[LayerState], cfg: PruneConfig,
                  sensitivities: Optional[dict[int, float]] = None,
                  std_errors: Optional[dict[int, float]] = None, z: float = 1.96) -> list[PruneDecision]:
    """Which layers drop how many LSBs now. ``sensitivities`` ({layer index: Tr/N}) turns on k = 2;
    with ``std_errors`` (same keys) a layer needs Tr/N + z·se below the mean for it (NaN: never).

    The mean sensitivity is taken over the searched (not fixed) layers. With a bit budget, layers are
    pruned lowest density first until the average width reaches the target.
    """
    if budget_reached(layers, cfg):
        return []
    mean = None
    if sensitivities:
        searched = [sensitivities[s.index] for s in layers if not s.fixed and s.index in sensitivities]
        mean = sum(searched) / len(searched) if searched else None
    bits_now = {s.index: s.bits for s in layers}
    decisions = []
    for state in sorted(prune_candidates(layers, cfg), key=lambda s: (s.density, s.index)):
        sensitivity = sensitivities.get(state.index) if sensitivities else None
        k = 1
        margin = 0.0 if std_errors is None else z * std_errors.get(state.index, float("nan"))
        if mean is not None and sensitivity is not None and sensitivity + margin < mean \
                and state.bits - 2 >= cfg.min_bits:
            k = 2
        decisions.append(PruneDecision(state.index, state.fqn, state.bits, state.bits - k, k, state.density,
                                       sensitivity, mean))
        bits_now[state.index] = state.bits - k
        if cfg.target_avg_bits is not None and average_bits(
                [s.params for s in layers], [bits_now[s.index] for s in layers]) <= cfg.target_avg_bits:
            break
    return sorted(decisions, key=lambda d: d.index)
