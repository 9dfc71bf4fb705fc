"""Per-layer widths under a bit budget: a multiple-choice knapsack, solved exactly.

Given a cost for every candidate width of every layer (HAWQ-V2's Ω_l(b) = Tr(H_l)/N_l ·
||Q_b(W_l) - W_l||² for the HAWQ-style baseline; the cost of the bits still to drop for MSQ's budget
planner), minimise Σ_l cost_l(b_l) subject to Σ_l N_l b_l <= budget, by dynamic programming over
the Pareto front of (weight bits used, total cost): a partial allocation that uses more bits and
costs more than another is never part of an optimum, so it is dropped.

>>> allocate([10, 10], [{1: 5.0, 2: 1.0}, {1: 2.0, 2: 0.0}], budget_bits=30)
[2, 1]
"""
from __future__ import annotations

from typing import Optional

from msq.errors import ConfigError


def allocate(params: list[int], omega: list[dict[int, float]], budget_bits: float,
             floor_bits: float = 0.0) -> list[int]:
    """Widths (one per layer) of least total cost whose weight bits Σ N_l b_l lie in
    [``floor_bits``, ``budget_bits``] (the floor only when some allocation reaches it; else ignored).

    ``omega[l]`` maps each allowed width of layer l to its cost (a fixed layer has one entry).
    Ties go to the allocation that uses more of the budget (more bits at the same cost).
    """
    for costs in omega:
        if not costs:
            raise ConfigError("allocate: every layer needs at least one candidate width")
    smallest = sum(p * min(c) for p, c in zip(params, omega))
    if smallest > budget_bits + 1e-9:
        total = max(sum(params), 1)
        raise ConfigError(f"the budget of {budget_bits / total:.3f} average bits is below what the allowed widths "
                          f"can reach ({smallest / total:.3f}): raise the target or lower prune.min_bits")
    # the most bits the layers after each one can still add (to drop states that cannot reach the floor)
    room = [0] * (len(params) + 1)
    for i in range(len(params) - 1, -1, -1):
        room[i] = room[i + 1] + params[i] * max(omega[i])
    floor = floor_bits if room[0] >= floor_bits else 0.0
    front: list[tuple[int, float, tuple]] = [(0, 0.0, ())]
    for i, (n, costs) in enumerate(zip(params, omega)):
        grown = [(used + n * b, cost + costs[b], choice + (b,))
                 for used, cost, choice in front for b in sorted(costs)
                 if used + n * b <= budget_bits + 1e-9 and used + n * b + room[i + 1] >= floor - 1e-9]
        front = _pareto(grown) if floor <= 0 else _cheapest_per_size(grown)
    eligible = [s for s in front if s[0] >= floor - 1e-9]
    if not eligible:             # no sum of widths falls between the floor and the budget
        return allocate(params, omega, budget_bits)
    best = min(eligible, key=lambda s: (s[1], -s[0]))
    return list(best[2])


def _cheapest_per_size(states: list[tuple[int, float, tuple]]) -> list[tuple[int, float, tuple]]:
    """With a floor, more bits at a higher cost can be needed: keep the cheapest state per bit count."""
    best: dict[int, tuple[int, float, tuple]] = {}
    for state in states:
        if state[0] not in best or state[1] < best[state[0]][1]:
            best[state[0]] = state
    return list(best.values())


def _pareto(states: list[tuple[int, float, tuple]]) -> list[tuple[int, float, tuple]]:
    """States not dominated in (bits used, cost), sorted by bits: each is cheaper than every state
    that uses fewer bits, or as cheap as the cheapest of them (kept for the more-bits tie-break)."""
    kept: list[tuple[int, float, tuple]] = []
    best = float("inf")
    for state in sorted(states, key=lambda s: (s[0], s[1])):
        if kept and state[0] == kept[-1][0]:
            continue                      # same bits, no cheaper (sorted by cost within equal bits)
        if state[1] <= best + 1e-12 * max(1.0, abs(best)):
            kept.append(state)
            best = min(best, state[1])
    return kept


def brute_force_allocate(params: list[int], omega: list[dict[int, float]], budget_bits: float,
                         floor_bits: float = 0.0) -> Optional[list[int]]:
    """The same optimum by enumerating every allocation (for tests on small problems)."""
    import itertools
    best = None
    for choice in itertools.product(*[sorted(c) for c in omega]):
        used = sum(n * b for n, b in zip(params, choice))
        if used > budget_bits + 1e-9 or used < floor_bits - 1e-9:
            continue
        cost = sum(c[b] for c, b in zip(omega, choice))
        if best is None or (cost, -used) < (best[0], -best[1]):
            best = (cost, used, list(choice))
    return None if best is None else best[2]
