"""The Hutchinson estimate's stated precision: its intervals cover the exact trace at their rate,
and the adaptive estimate stops once every watched layer is precise enough."""
import math

import torch

from msq.hessian import estimate_layer_traces
from test_hessian import exact_hessian, tiny_mlp_and_batch


def exact_layer_traces(model, x, y):
    hessian, sizes = exact_hessian(model, x, y)
    bounds = torch.tensor([0, *sizes]).cumsum(0)
    return [float(hessian[a:b, a:b].trace()) for a, b in zip(bounds[:-1], bounds[1:])], sizes


def test_95_percent_intervals_cover_the_exact_trace_about_95_percent_of_the_time():
    model, x, y = tiny_mlp_and_batch()
    exact, sizes = exact_layer_traces(model, x, y)
    covered = total = 0
    for seed in range(120):
        estimate = estimate_layer_traces(model, [(x, y)], probes=48, seed=seed)
        for (low, high), trace, n in zip(estimate.sensitivity_intervals(1.96), exact, sizes):
            covered += low <= trace / n <= high
            total += 1
    rate = covered / total
    # 360 intervals at a nominal 95%: a binomial 99.9% band around 0.95 is about ±0.04
    assert 0.90 <= rate <= 0.99, rate


def test_relative_standard_error_shrinks_like_one_over_root_samples():
    model, x, y = tiny_mlp_and_batch()
    few = estimate_layer_traces(model, [(x, y)], probes=16, seed=1).relative_std_errors()
    many = estimate_layer_traces(model, [(x, y)], probes=1024, seed=1).relative_std_errors()
    for a, b in zip(few, many):
        assert 0.5 * math.sqrt(64) <= a / b <= 2.0 * math.sqrt(64)


def test_adaptive_estimate_stops_when_the_target_is_met_and_says_so():
    model, x, y = tiny_mlp_and_batch()
    batches = [(x, y)] * 50
    estimate = estimate_layer_traces(model, batches, probes=8, seed=0, target_rse=0.3)
    assert estimate.extra["target_met"] is True
    assert estimate.extra["batches"] < 50
    assert max(estimate.relative_std_errors()) <= 0.3
    capped = estimate_layer_traces(model, batches[:2], probes=2, seed=0, target_rse=1e-6)
    assert capped.extra == {"target_rse": 1e-6, "target_met": False, "batches": 2}
