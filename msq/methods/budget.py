"""Budgets that land: a size target, the path the search follows to it, and the cheapest prunes.

With ``prune.target_avg_bits`` B (or ``prune.target_compression`` X, i.e. B = 32 / X) the search
phase must end at an average width <= B, as close to B as one layer's step allows:

- **Path.** After prune check j of J the average may be at most
  ``ceiling_j = start + (B - start) * min(1, j / round(f J))``: the target is reached after a
  fraction f (``prune.reach_fraction``, 0.5) of the checks, so the rest of the search and the
  finetune train the final widths.
- **Goal.** At every check the cheapest final widths for B are solved for first (the same knapsack
  below, on today's costs); a check only moves layers toward that goal, so the early checks never
  take a layer below where the landing needs it.
- **Prunes.** Layers whose LSBs became (almost) zero go first (they cost nothing). If the average
  is still above the ceiling, the remaining drops are the cheapest set that meets it: each layer l
  may go to any width b between min_bits and its own, at cost
  ``(Tr(H_l) / N_l) * ||Q_b(W_l) - Q_n(W_l)||^2``, the second-order loss increase of moving its
  forward weights (``msq.methods.pricing``: HAWQ-V2's Ω, measured on the weights the LSB penalty has
  shaped), and the exact knapsack (``msq.methods.knapsack``) picks the widths. Among equal costs it keeps the
  most bits, so the run lands as close under the ceiling as the layers' steps allow.
- **λ.** ``steer_lam`` raises λ (x ``gain``) after a check that had to force prunes — the penalty
  was too weak to empty the LSBs in time — and relaxes it (/ sqrt(gain)) when the zero-LSB prunes
  kept up; once the target is reached λ is 0 (no prune is left to prepare).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Optional

from msq.accounting import average_bits
from msq.errors import ConfigError
from msq.methods.knapsack import allocate


@dataclass(frozen=True)
class Move:
    """Drop layer ``index`` from ``old_bits`` to ``new_bits``."""
    index: int
    old_bits: int
    new_bits: int
    cost: float          # estimated loss increase (sensitivity x perturbation), >= 0
    forced: bool         # True when taken for the budget rather than because its LSBs were zero


def target_average_bits(target_bits: Optional[float], target_compression: Optional[float]) -> Optional[float]:
    """The budget as an average width: B, or 32 / X for a compression target X."""
    if target_bits is not None:
        return float(target_bits)
    if target_compression is not None:
        return 32.0 / float(target_compression)
    return None


def path_ceiling(start: float, target: float, check: int, checks: int, fraction: float = 0.5) -> float:
    """Largest average allowed after ``check`` (1-based) of ``checks``; ``target`` from check round(f J) on."""
    span = max(1, round(checks * fraction))
    return start + (target - start) * min(1.0, check / span)


def plan_moves(params: list[int], bits: list[int], searchable: list[bool], min_bits: int, ceiling: float,
               target: float, width_cost: Callable[[int, int], float], free: Optional[list[Move]] = None,
               tolerance: float = 0.1) -> list[Move]:
    """The moves that bring the average width down to ``ceiling``: free ones first, then forced ones.

    ``free`` moves (zero LSBs) are kept while the average stays at or above ``target - tolerance``.
    ``width_cost(i, b)`` is the cost of layer i at width b (0 at its current width, growing as b
    falls). Forced moves take each layer straight to its new width (one Move per layer). When the
    ceiling is the target, the widths are the cheapest that land in [target - tolerance, target]
    where any do, else the cheapest under the target.
    """
    total = sum(params)
    now = list(bits)
    taken: list[Move] = []
    for move in free or []:
        trial = list(now)
        trial[move.index] = move.new_bits
        if average_bits(params, trial) >= target - tolerance - 1e-9:
            now = trial
            taken.append(move)
    if average_bits(params, now) <= ceiling + 1e-9:
        return taken
    options = _width_options(now, searchable, min_bits, width_cost)
    # the goal: the cheapest widths that land within ``tolerance`` under the target; this check only
    # moves layers toward it (never below it), so the landing stays reachable
    goal = landing_goal(params, now, searchable, min_bits, target, width_cost, tolerance)
    toward = [{b: c for b, c in o.items() if b >= g} for o, g in zip(options, goal)]
    floor = (target - tolerance) * total if ceiling <= target + 1e-9 else 0.0
    widths = _cheapest(params, toward, ceiling * total, floor)
    for i, (old, new) in enumerate(zip(now, widths)):
        if new < old:
            taken.append(Move(i, old, new, options[i][new], forced=True))
    return taken


def landing_goal(params: list[int], bits: list[int], searchable: list[bool], min_bits: int, target: float,
                 width_cost: Callable[[int, int], float], tolerance: float = 0.1) -> list[int]:
    """The widths the search is heading for: the cheapest that land in [target - tolerance, target]."""
    total = sum(params)
    options = _width_options(list(bits), searchable, min_bits, width_cost)
    return _cheapest(params, options, target * total, (target - tolerance) * total)


def lowest_widths(bits: list[int], searchable: list[bool], min_bits: int) -> list[int]:
    """The narrowest width each layer may reach: min_bits (or its own, if already below), a fixed layer its own."""
    return [min(min_bits, b) if s else b for b, s in zip(bits, searchable)]


def _width_options(bits: list[int], searchable: list[bool], min_bits: int,
                   width_cost: Callable[[int, int], float]) -> list[dict[int, float]]:
    """Each layer's allowed widths (its lowest .. its own) and their costs; a fixed layer keeps its own."""
    lowest = lowest_widths(bits, searchable, min_bits)
    return [{b: (max(width_cost(i, b), 0.0) if b < bits[i] else 0.0) for b in range(lowest[i], bits[i] + 1)}
            for i in range(len(bits))]


def _cheapest(params: list[int], options: list[dict[int, float]], budget: float, floor: float) -> list[int]:
    """``allocate``, or every layer at its lowest allowed width when even that exceeds the budget."""
    try:
        return allocate(params, options, budget, floor_bits=floor)
    except ConfigError:
        return [min(o) for o in options]


def steer_lam(lam: float, forced: bool, reached: bool, gain: float = 2.0, floor: float = 1.0,
              ceiling: float = 1e5) -> float:
    """λ for the next epoch of the search: 0 once the target is reached, up after forced prunes, else down."""
    if reached:
        return 0.0
    value = lam * gain if forced else lam / math.sqrt(gain)
    return float(min(max(value, floor), ceiling))


BUDGET_FIELDS = ("target_avg_bits", "target_compression", "final_avg_bits", "final_compression", "gap_bits",
                 "tolerance_bits", "landed")


def budget_summary(cfg, trainer) -> dict:
    """``{"budget": {...}}`` for result.json: the target and how close the run landed (or {})."""
    target = cfg.prune.budget_bits
    if target is None:
        return {}
    from msq.training.summary import accounting_totals
    totals = accounting_totals(trainer)
    gap = totals["average_bits"] - target
    return {"budget": {
        "target_avg_bits": target, "target_compression": cfg.prune.target_compression,
        "final_avg_bits": totals["average_bits"], "final_compression": totals["compression"],
        "gap_bits": gap, "tolerance_bits": cfg.prune.landing_tolerance,
        "landed": -cfg.prune.landing_tolerance - 1e-9 <= gap <= 1e-9}}
