"""Hutchinson per-layer traces against the exact Hessian of a tiny MLP (METHODS §4)."""
import torch
from torch import nn
from torch.func import functional_call

from msq.config import QuantConfig
from msq.hessian import estimate_layer_traces, hutchinson_samples, rademacher_like
from msq.quant import quant_layers, quantize_, set_mode_


def tiny_mlp_and_batch():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 6), nn.Tanh(), nn.Linear(6, 4), nn.Tanh(), nn.Linear(4, 3)).double()
    quantize_(model, QuantConfig(keep_first_last=False))
    set_mode_(model, "float")  # a smooth function, so the exact Hessian is informative
    x = torch.randn(32, 5, dtype=torch.float64)
    y = torch.randint(0, 3, (32,))
    return model, x, y


def exact_hessian(model, x, y):
    names = [f"{name}.weight" for name, _ in quant_layers(model)]
    params = {k: v.detach() for k, v in model.named_parameters()}
    shapes = [params[n].shape for n in names]
    sizes = [params[n].numel() for n in names]

    def loss_of(flat):
        chunks = torch.split(flat, sizes)
        local = dict(params)
        local.update({n: c.view(s) for n, c, s in zip(names, chunks, shapes)})
        return nn.functional.cross_entropy(functional_call(model, local, (x,)), y)

    flat = torch.cat([params[n].flatten() for n in names])
    return torch.autograd.functional.hessian(loss_of, flat), sizes


def test_per_layer_traces_within_10_percent_of_exact():
    model, x, y = tiny_mlp_and_batch()
    hessian, sizes = exact_hessian(model, x, y)
    bounds = torch.tensor([0, *sizes]).cumsum(0)
    exact = [float(hessian[a:b, a:b].trace()) for a, b in zip(bounds[:-1], bounds[1:])]
    estimate = estimate_layer_traces(model, [(x, y)], probes=4000, seed=0)
    for name, ours, ref in zip(estimate.names, estimate.traces, exact):
        assert abs(ours - ref) <= 0.10 * abs(ref), (name, ours, ref)
    assert estimate.sensitivities == [t / n for t, n in zip(estimate.traces, sizes)]
    assert all(se > 0 for se in estimate.trace_std_errors)


def test_layer_samples_sum_to_the_full_model_estimate_for_the_same_probes():
    model, x, y = tiny_mlp_and_batch()
    hessian, _ = exact_hessian(model, x, y)
    params = [layer.weight for _, layer in quant_layers(model)]
    loss = nn.functional.cross_entropy(model(x), y)
    samples = hutchinson_samples(loss, params, probes=5, generator=torch.Generator().manual_seed(3))
    replay = torch.Generator().manual_seed(3)
    for row in samples:
        z = torch.cat([rademacher_like(p, replay).flatten() for p in params])
        assert torch.isclose(row.sum(), z @ hessian @ z, rtol=1e-9, atol=1e-12)


def test_estimate_is_deterministic_and_restores_train_mode():
    model, x, y = tiny_mlp_and_batch()
    model.train()
    a = estimate_layer_traces(model, [(x, y)], probes=3, seed=7)
    b = estimate_layer_traces(model, [(x, y)], probes=3, seed=7)
    assert torch.equal(a.samples, b.samples) and model.training


def test_quantized_forward_gives_finite_traces():
    model, x, y = tiny_mlp_and_batch()
    set_mode_(model, "quant")
    estimate = estimate_layer_traces(model, [(x, y), (x[:16], y[:16])], probes=2)
    assert estimate.samples.shape == (4, 3)
    assert all(torch.isfinite(torch.tensor(estimate.traces)))
