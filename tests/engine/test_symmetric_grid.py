"""The symmetric (sign-magnitude) grid: exact nesting at every width down to 1 bit, binary and
ternary levels, and the one signed-integer view (codes, step) shared with the affine grid."""
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from msq.functional import (GRIDS, code_range, code_step, dequantize_weight_codes, drop_weight_lsbs, fake_quantize,
                            lsb, lsb_density, moved_by_drop, weight_codes)


def test_levels_at_one_two_and_three_bits():
    s = torch.tensor(1.0)
    w = torch.linspace(-1.5, 1.5, 301)
    assert sorted(set(fake_quantize(w, s, 1, "symmetric").tolist())) == [-0.5, 0.5]
    assert sorted(set(fake_quantize(w, s, 2, "symmetric").tolist())) == [-0.5, 0.0, 0.5]
    assert sorted(set(fake_quantize(w, s, 3, "symmetric").tolist())) == [-0.75, -0.5, -0.25, 0.0, 0.25, 0.5, 0.75]
    assert code_range(1, "symmetric") == (-1, 1) and code_range(4, "symmetric") == (-7, 7)
    assert code_range(4, "affine") == (-8, 7)


@pytest.mark.parametrize("grid", GRIDS)
@settings(max_examples=40, deadline=None)
@given(n=st.integers(2, 8), seed=st.integers(0, 10_000))
def test_dropping_a_zero_lsb_changes_no_value_at_every_width(grid, n, seed):
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(400, generator=g) * 0.5
    s = w.abs().max()
    codes = weight_codes(w, s, n, grid)
    keep = ~moved_by_drop(codes, n, grid)
    assert torch.equal(fake_quantize(w, s, n - 1, grid)[keep], fake_quantize(w, s, n, grid)[keep])
    values = dequantize_weight_codes(codes, s, n, grid)[keep]
    dropped = drop_weight_lsbs(codes, n, 1, grid)[keep]
    assert torch.equal(dequantize_weight_codes(dropped, s, n - 1, grid), values)
    # every (n-1)-bit level is an n-bit level
    lo, hi = code_range(n - 1, grid)
    coarse = dequantize_weight_codes(torch.arange(lo, hi + 1), s, n - 1, grid)
    flo, fhi = code_range(n, grid)
    fine = set(dequantize_weight_codes(torch.arange(flo, fhi + 1), s, n, grid).tolist())
    assert set(coarse.tolist()) <= fine


@pytest.mark.parametrize("grid", GRIDS)
def test_signed_codes_times_step_are_the_fake_quantized_weights(grid):
    w = torch.randn(1000) * 0.3
    s = w.abs().max()
    for n in range(1, 9):
        q = fake_quantize(w, s, n, grid)
        assert torch.allclose(code_step(s, n, grid) * weight_codes(w, s, n, grid).float(), q, atol=1e-7)


def test_lsb_at_two_bits_marks_the_ternary_zeros_and_pushes_them_outward():
    s = torch.tensor(1.0)
    w = torch.tensor([-0.6, -0.1, 0.05, 0.2, 0.7], requires_grad=True)
    bit = lsb(w, s, 2, "symmetric")
    assert (bit != 0).tolist() == [False, True, True, True, False]
    assert lsb_density(w, s, 2, "symmetric") == pytest.approx(0.6)
    bit.abs().sum().backward()
    # descending the penalty moves a ternary zero toward its binary level ±s/2
    assert (-w.grad[1:4] * torch.sign(w.detach()[1:4]) > 0).all()


def test_straight_through_gradient_inside_the_range_only():
    s = torch.tensor(1.0)
    w = torch.tensor([-1.5, -0.3, 0.4, 1.2], requires_grad=True)
    fake_quantize(w, s, 3, "symmetric").sum().backward()
    assert w.grad.tolist() == [0.0, 1.0, 1.0, 0.0]
