"""Budgets that land (msq.methods.budget): the path, the cheapest-bit planner, the λ controller,
and a real MSQ run that ends on its target."""
import itertools
import random

import pytest

from msq.accounting import average_bits
from msq.config import RunConfig
from msq.methods.budget import Move, landing_goal, path_ceiling, plan_moves, steer_lam
from msq.training.trainer import Trainer

LENET = [150, 2400, 48000, 10080, 840]          # lenet5's weight counts; first and last fixed at 8 bits
SEARCHED = [False, True, True, True, False]


def apply(bits, moves):
    out = list(bits)
    for move in moves:
        out[move.index] = move.new_bits
    return out


@pytest.mark.parametrize("target", [1.5, 2.0, 2.5, 3.0, 4.0])
def test_planner_lands_within_tolerance_at_the_cheapest_layers(target):
    rng = random.Random(0)
    sens = [rng.uniform(0.1, 2.0) for _ in LENET]
    cost = lambda i, b: sens[i] * 4.0 ** (-b)          # a layer's error grows 4x with each dropped bit
    moves = plan_moves(LENET, [8] * 5, SEARCHED, 1, target, target, cost)
    final = apply([8] * 5, moves)
    assert target - 0.1 <= average_bits(LENET, final) <= target + 1e-9
    assert final[0] == 8 and final[4] == 8 and min(final) >= 1
    assert all(m.forced and m.new_bits < m.old_bits for m in moves)
    assert len({m.index for m in moves}) == len(moves)            # one move per layer


def test_planner_follows_the_path_and_lands_within_one_layer_step():
    params, searched = [1000, 300, 50], [True, True, True]
    bits, target, checks = [8, 8, 8], 3.0, 6
    for check in range(1, checks + 1):
        ceiling = path_ceiling(8.0, target, check, checks, fraction=5 / 6)
        before = average_bits(params, bits)
        moves = plan_moves(params, bits, searched, 1, ceiling, target, lambda i, b: (8 - b) ** 2 / params[i])
        bits = apply(bits, moves)
        now = average_bits(params, bits)
        assert now <= ceiling + 1e-9 or now == before
        if moves:   # undershoot of the ceiling is at most one step of a moved layer
            assert ceiling - now <= max(params[m.index] for m in moves) / sum(params) + 1e-9
    assert path_ceiling(8.0, target, checks - 1, checks, fraction=5 / 6) == target
    assert path_ceiling(8.0, target, 3, checks) == target < path_ceiling(8.0, target, 2, checks)
    assert target - 0.1 <= average_bits(params, bits) <= target    # the goal keeps the landing reachable


def test_free_moves_are_taken_first_but_never_far_below_the_target():
    free = [Move(0, 4, 2, 0.0, False), Move(1, 4, 3, 0.0, False)]
    moves = plan_moves([100, 100], [4, 4], [True, True], 1, 3.0, 3.0, lambda i, b: 1.0, free=free, tolerance=0.1)
    # taking both free moves would give 2.5 bits: the second is skipped, and no forced move is needed
    assert [(m.index, m.new_bits, m.forced) for m in moves] == [(0, 2, False)]


def test_planner_prefers_the_cheapest_bits_per_weight():
    costs = {0: 10.0, 1: 1.0}
    moves = plan_moves([100, 100], [4, 4], [True, True], 1, 3.5, 3.0, lambda i, b: costs[i] * (4 - b))
    assert [(m.index, m.new_bits) for m in moves] == [(1, 3)]


def test_planner_is_the_exact_optimum_of_the_cheapest_widths():
    from msq.methods.knapsack import brute_force_allocate
    params, bits = [30, 70, 20], [5, 5, 5]
    weights = [3.0, 1.0, 5.0]
    cost = lambda i, b: weights[i] * (5 - b) ** 2
    moves = plan_moves(params, bits, [True] * 3, 1, 3.0, 3.0, cost)
    options = [{b: cost(i, b) for b in range(1, 6)} for i in range(3)]
    assert apply(bits, moves) == brute_force_allocate(params, options, 3.0 * sum(params))


def test_landing_goal_is_where_a_single_check_at_the_target_lands_and_keeps_fixed_layers():
    params, bits, searched = [30, 70, 20, 10], [5, 5, 5, 8], [True, True, True, False]
    weights = [3.0, 1.0, 5.0, 0.0]
    cost = lambda i, b: weights[i] * (bits[i] - b) ** 2
    goal = landing_goal(params, bits, searched, 1, 3.5, cost, tolerance=0.1)
    assert goal == apply(bits, plan_moves(params, bits, searched, 1, 3.5, 3.5, cost, tolerance=0.1))
    assert goal[3] == 8 and 3.4 - 1e-9 <= average_bits(params, goal) <= 3.5 + 1e-9


def test_exhaustive_check_that_the_landing_is_as_close_as_single_steps_allow():
    params = [7, 13, 29]
    for bits in itertools.product(range(2, 5), repeat=3):
        target = 2.4
        moves = plan_moves(params, list(bits), [True] * 3, 1, target, target, lambda i, b: 1.0, tolerance=0.0)
        final = average_bits(params, apply(bits, moves))
        assert final <= target + 1e-9
        assert target - final <= max(params) / sum(params) + 1e-9


def test_lam_controller_raises_relaxes_and_stops():
    assert steer_lam(32.0, forced=True, reached=False) == 64.0
    assert steer_lam(32.0, forced=False, reached=False) == pytest.approx(32.0 / 2 ** 0.5)
    assert steer_lam(32.0, forced=True, reached=True) == 0.0
    assert steer_lam(1.0, forced=False, reached=False, floor=1.0) == 1.0


@pytest.mark.parametrize("budget", [{"target_avg_bits": 3.0}, {"target_compression": 8.0}])
def test_msq_run_ends_on_its_budget_and_reports_it(budget):
    cfg = RunConfig.from_dict({
        "model": "mlp", "data": {"name": "digits"}, "quant": {"grid": "symmetric", "keep_first_last": False},
        "train": {"pretrain_epochs": 1, "search_epochs": 4, "finetune_epochs": 1, "threads": 1, "log_every": 5},
        "prune": {"min_bits": 1, **budget}, "hessian": {"probes": 2, "batches": 2}})
    summary = Trainer(cfg).fit()
    target = cfg.prune.budget_bits
    assert summary["budget"]["target_avg_bits"] == target
    assert -0.1 - 1e-9 <= summary["average_bits"] - target <= 1e-9
    assert summary["budget"]["landed"] is True
    assert any(e["kind"] == "lam_change" and e["source"] == "budget" for e in summary["events"])
    # after landing λ is 0: the rest of the search trains the final widths
    assert summary["lam"] == 0.0


def test_a_budget_below_what_min_bits_allows_is_warned_about_before_the_run():
    from msq.training.preflight import preflight

    lenet = {"model": "lenet5", "data.name": "mnist5k", "quant.grid": "symmetric"}
    # first and last fixed at 8 bits, the rest at min_bits 2: 2.10 bits is the smallest lenet5 can reach
    warnings = preflight(RunConfig().replace(**lenet, **{"prune.target_avg_bits": 2.0, "prune.min_bits": 2}))
    assert len(warnings) == 1 and "2.00 average bits is below the 2.10" in warnings[0] and "prune.min_bits" in warnings[0]
    assert preflight(RunConfig().replace(**lenet, **{"prune.target_avg_bits": 2.0, "prune.min_bits": 1})) == []
    assert preflight(RunConfig().replace(**lenet, **{"prune.target_avg_bits": 2.2, "prune.min_bits": 2})) == []
    assert preflight(RunConfig().replace(**lenet, method="uniform")) == []


def test_the_console_result_says_where_the_run_landed_against_its_budget():
    from msq.training.foreground import format_result

    summary = {"layers": [], "float_acc": 97.0, "final_acc": 96.5, "status": "completed", "average_bits": 2.0967,
               "compression": 15.26, "budget": {"target_avg_bits": 2.0, "final_avg_bits": 2.0967, "gap_bits": 0.0967,
                                                "tolerance_bits": 0.1, "landed": False}}
    assert "budget 2.00 bits: ended at 2.10 (+0.10; within 0.1 under it counts), missed it" in format_result(summary)
    landed = {**summary, "budget": {**summary["budget"], "final_avg_bits": 1.97, "gap_bits": -0.03, "landed": True}}
    assert "ended at 1.97 (-0.03; within 0.1 under it counts), landed" in format_result(landed)
