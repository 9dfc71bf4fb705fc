"""The differentiable LSB and its L1 penalty (METHODS §2)."""
import torch

from msq.config import QuantConfig, RegConfig
from msq.functional import fake_quantize, lsb, lsb_density, quantize_codes
from msq.quant import quantize_
from msq.regularize import lam_at, layer_weights, lsb_penalty


def test_lsb_values_are_zero_or_one_step():
    torch.manual_seed(0)
    w = torch.randn(4000)
    s = w.abs().max()
    for n in range(2, 9):
        values = set(lsb(w, s, n).unique().tolist())
        step = 2.0 ** (1 - n)
        assert values <= {-step, 0.0, step}
        odd = (quantize_codes(w, s, n) & 1).bool()
        assert torch.equal(lsb(w, s, n) != 0, odd)


def test_gradient_zero_at_even_codes_and_toward_the_coarser_level_at_odd_codes():
    torch.manual_seed(1)
    s = torch.tensor(1.0)
    n = 4
    w = ((torch.rand(3000) * 2 - 1) * 0.95).requires_grad_(True)
    lsb(w, s, n).abs().sum().backward()
    codes = quantize_codes(w, s, n)
    odd = (codes & 1).bool()
    assert torch.all(w.grad[~odd] == 0)
    # a gradient step moves an odd-code weight toward the (n-1)-bit level it rounds to
    target = fake_quantize(w.detach(), s, n - 1)
    direction = -w.grad[odd]
    assert torch.all(torch.sign(direction) == torch.sign(target[odd] - w.detach()[odd]))
    assert torch.all(w.grad[odd].abs() == 1.0 / s)


def test_without_the_stop_gradient_the_gradient_vanishes():
    """Why the stop-gradient is there: two STE terms cancel exactly."""
    w = torch.linspace(-0.9, 0.9, 101, requires_grad=True)
    s = torch.tensor(1.0)
    naive = (fake_quantize(w, s, 4) - fake_quantize(w, s, 3)) / s
    naive.abs().sum().backward()
    assert torch.all(w.grad == 0)


def test_penalty_alone_drives_lsb_density_below_5_percent():
    torch.manual_seed(2)
    s = torch.tensor(1.0)
    w = ((torch.rand(20_000) * 2 - 1) * 0.9).requires_grad_(True)
    opt = torch.optim.SGD([w], lr=1e-3)
    start = lsb_density(w, s, 6)
    for step in range(200):
        opt.zero_grad()
        lsb(w, s, 6).abs().mean().mul(w.numel()).backward()
        opt.step()
        if lsb_density(w, s, 6) <= 0.05:
            break
    assert start > 0.4
    assert lsb_density(w, s, 6) <= 0.05, f"density still {lsb_density(w, s, 6):.3f} after {step + 1} steps"
    assert step < 50


def test_memory_weighting_matches_hand_computation():
    assert layer_weights([100, 300], [8, 4], "memory") == [800 / 2000, 1200 / 2000]
    assert layer_weights([100, 300], [8, 4], "uniform") == [0.5, 0.5]


def test_penalty_value_matches_hand_computation():
    torch.manual_seed(3)
    model = torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.ReLU(), torch.nn.Linear(5, 4))
    quantize_(model, QuantConfig(init_bits=5, keep_first_last=False))
    a, b = model[0], model[2]
    expected = 0.0
    total = a.weight.numel() * 5 + b.weight.numel() * 5
    for layer in (a, b):
        d = lsb_density(layer.weight, layer.scale, 5, layer.grid)
        expected += (layer.weight.numel() * 5 / total) * d * 2.0 ** (1 - 5)
    assert torch.isclose(lsb_penalty([a, b], "memory"), torch.tensor(expected), rtol=1e-6)


def test_lambda_schedule_is_a_function_of_the_step():
    cfg = RegConfig(lam=2.0, schedule="linear_warmup", warmup_steps=4)
    assert [lam_at(s, cfg) for s in range(5)] == [0.5, 1.0, 1.5, 2.0, 2.0]
    assert lam_at(0, RegConfig(lam=3.0)) == 3.0
    assert lam_at(0, cfg, lam=8.0) == 2.0
