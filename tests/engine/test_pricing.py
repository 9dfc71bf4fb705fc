"""The price of a width (msq.methods.pricing): Tr/N times the summed squared perturbation."""
import torch

from msq.functional import fake_quantize
from msq.methods.pricing import width_price


def test_price_is_average_trace_times_summed_squared_change():
    w = torch.tensor([0.9, -0.3, 0.1, -1.0])
    scale = torch.tensor(1.0)
    # 2 bits (symmetric): ternary {-0.5, 0, 0.5}; the change from w is [-0.4, -0.2, -0.1, 0.5]
    assert torch.equal(fake_quantize(w, scale, 2, "symmetric"), torch.tensor([0.5, -0.5, 0.0, -0.5]))
    expected = 3.0 * (0.4 ** 2 + 0.2 ** 2 + 0.1 ** 2 + 0.5 ** 2)
    assert abs(width_price(3.0, w, w, scale, 2, "symmetric") - expected) < 1e-6


def test_price_grows_with_the_layer_so_a_bit_saved_costs_the_same_per_weight():
    torch.manual_seed(0)
    w = torch.randn(500)
    scale = w.abs().max()
    small = width_price(0.2, w, w, scale, 3, "symmetric")
    doubled = torch.cat([w, w])       # the same weights twice: twice the loss increase, twice the bits saved
    assert abs(width_price(0.2, doubled, doubled, scale, 3, "symmetric") - 2 * small) < 1e-6 * small


def test_price_is_zero_at_the_reference_and_for_a_negative_trace():
    w = torch.tensor([0.25, -0.5, 0.75])
    scale = torch.tensor(1.0)
    forward = fake_quantize(w, scale, 3, "symmetric")
    assert width_price(1.0, w, forward, scale, 3, "symmetric") == 0.0
    assert width_price(-2.0, w, w, scale, 1, "symmetric") == 0.0
