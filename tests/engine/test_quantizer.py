"""Invariants of the round-clamp quantizer on the nested 2^n grid (METHODS §1)."""
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from msq.functional import (dequantize_codes, drop_lsbs, fake_quantize, from_bit_planes, from_sign_magnitude_planes,
                            quantize_codes, signed_codes, to_bit_planes, to_sign_magnitude_planes)


def reference_quantize(w: float, s: float, n: int) -> float:
    """Hand-written reference, one scalar at a time, in float64."""
    x = min(max(w / (2 * s) + 0.5, 0.0), 1.0)
    q = min(max(round(2 ** n * x), 0), 2 ** n - 1)
    return s * (2 * q / 2 ** n - 1)


def test_matches_hand_written_reference_exactly():
    torch.manual_seed(0)
    w = torch.randn(2000, dtype=torch.float64) * 0.7
    s = torch.tensor(1.3, dtype=torch.float64)
    for n in range(1, 9):
        ours = fake_quantize(w, s, n)
        ref = torch.tensor([reference_quantize(v, 1.3, n) for v in w.tolist()], dtype=torch.float64)
        assert torch.equal(ours, ref), n


def test_levels_range_and_zero_is_a_level():
    s = torch.tensor(2.0)
    for n in range(1, 9):
        levels = dequantize_codes(torch.arange(2 ** n), s, n)
        assert levels[0] == -s and levels[-1] == s * (1 - 2 ** (1 - n))
        assert (levels == 0).any()
        assert torch.allclose(levels.diff(), torch.full((2 ** n - 1,), float(2 * s / 2 ** n)))


@settings(max_examples=60, deadline=None)
@given(n=st.integers(2, 8), k=st.integers(1, 3), seed=st.integers(0, 10_000))
def test_grids_nest_dropping_zero_lsbs_changes_no_value(n, k, seed):
    if k >= n:
        k = n - 1
    g = torch.Generator().manual_seed(seed)
    s = torch.tensor(0.8)
    w = (torch.rand(500, generator=g) * 2 - 1) * 0.8
    codes = quantize_codes(w, s, n)
    even = codes[(codes % 2 ** k) == 0]                 # codes whose k low bits are zero
    values = dequantize_codes(even, s, n)
    assert torch.equal(dequantize_codes(drop_lsbs(even, n, k), s, n - k), values)
    assert torch.equal(fake_quantize(values, s, n - k), values)   # re-quantizing at n-k keeps them
    # every (n-k)-bit level is an n-bit level with k zero LSBs
    coarse = dequantize_codes(torch.arange(2 ** (n - k)), s, n - k)
    fine = dequantize_codes(torch.arange(0, 2 ** n, 2 ** k), s, n)
    assert torch.equal(coarse, fine)


def test_signed_codes_share_the_lsb():
    codes = torch.arange(256)
    assert torch.equal(signed_codes(codes, 8) & 1, codes & 1)
    assert signed_codes(codes, 8).min() == -128 and signed_codes(codes, 8).max() == 127


def test_ste_gradient_is_identity_inside_and_zero_outside():
    s = torch.tensor(1.0)
    w = torch.tensor([-1.5, -0.4, 0.0, 0.3, 0.99, 1.2], requires_grad=True)
    fake_quantize(w, s, 4).sum().backward()
    assert torch.equal(w.grad, torch.tensor([0.0, 1.0, 1.0, 1.0, 1.0, 0.0]))


def test_quantization_is_idempotent():
    torch.manual_seed(1)
    w = torch.randn(1000)
    s = w.abs().max()
    for n in range(2, 9):
        q = fake_quantize(w, s, n)
        assert torch.equal(fake_quantize(q, s, n), q)


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 8), seed=st.integers(0, 10_000))
def test_bit_planes_round_trip(n, seed):
    g = torch.Generator().manual_seed(seed)
    codes = torch.randint(0, 2 ** n, (7, 5), generator=g)
    planes = to_bit_planes(codes, n)
    assert planes.shape == (n, 7, 5) and planes.max() <= 1
    assert torch.equal(from_bit_planes(planes), codes)
    signed = torch.randint(-(2 ** n) + 1, 2 ** n, (40,), generator=g)
    pos, neg = to_sign_magnitude_planes(signed, n)
    assert not (pos.bool() & neg.bool()).any()
    assert torch.equal(from_sign_magnitude_planes(pos, neg), signed)
