"""The HAWQ-style baseline: the knapsack is solved exactly, and a run lands on its budget with the
widths it chose from the float model."""
import random

import pytest

from msq.config import RunConfig
from msq.errors import ConfigError
from msq.methods.knapsack import allocate, brute_force_allocate
from msq.training.trainer import Trainer


@pytest.mark.parametrize("seed", range(25))
def test_knapsack_matches_brute_force_on_small_problems(seed):
    rng = random.Random(seed)
    layers = rng.randint(1, 4)
    params = [rng.randint(1, 60) for _ in range(layers)]
    omega = [{b: rng.uniform(0, 1) * 2.0 ** (-b) * (1 + rng.random()) for b in range(1, rng.randint(2, 6) + 1)}
             for _ in range(layers)]
    lo = sum(p * min(o) for p, o in zip(params, omega))
    hi = sum(p * max(o) for p, o in zip(params, omega))
    budget = rng.uniform(lo, hi)
    floor = rng.choice([0.0, rng.uniform(lo, budget)])
    ours = allocate(params, omega, budget, floor_bits=floor)
    exact = brute_force_allocate(params, omega, budget, floor_bits=floor) or brute_force_allocate(params, omega, budget)
    cost = lambda choice: sum(o[b] for o, b in zip(omega, choice))
    assert cost(ours) == pytest.approx(cost(exact), abs=1e-12)
    assert sum(p * b for p, b in zip(params, ours)) <= budget + 1e-9


def test_knapsack_prefers_more_bits_at_equal_cost_and_explains_an_impossible_budget():
    assert allocate([10, 10], [{1: 0.0, 2: 0.0}, {1: 0.0, 2: 0.0}], budget_bits=30) in ([2, 1], [1, 2])
    with pytest.raises(ConfigError, match="below what the allowed widths can reach"):
        allocate([10], [{2: 0.0, 3: 0.0}], budget_bits=15)


def hawq_cfg(**prune):
    return RunConfig.from_dict({
        "method": "hawq", "model": "mlp", "data": {"name": "digits"},
        "quant": {"grid": "symmetric", "keep_first_last": False},
        "train": {"pretrain_epochs": 1, "search_epochs": 1, "finetune_epochs": 1, "threads": 1, "log_every": 5},
        "prune": {"min_bits": 1, **prune}, "hessian": {"probes": 2, "batches": 2}})


def test_hawq_run_allocates_once_on_the_float_model_and_lands_under_its_budget():
    summary = Trainer(hawq_cfg(target_avg_bits=3.0)).fit()
    assert summary["average_bits"] <= 3.0 + 1e-9
    allocations = [e for e in summary["events"] if e["kind"] == "allocation"]
    assert len(allocations) == 1 and allocations[0]["bits"] == [l["bits"] for l in summary["layers"]]
    assert summary["allocation"] == {l["fqn"]: l["bits"] for l in summary["layers"]}
    assert [e["phase"] for e in summary["events"] if e["kind"] == "phase"] == ["pretrain", "qat", "finetune"]
    assert summary["budget"]["target_avg_bits"] == 3.0


def test_hawq_without_a_budget_says_how_to_give_one():
    with pytest.raises(ConfigError, match="needs a budget"):
        Trainer(hawq_cfg())
