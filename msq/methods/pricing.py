"""What a width costs a layer: the second-order loss increase of moving its weights to a coarser grid.

    ΔL_l(b) ≈ ½ ΔWᵀ H_l ΔW ≈ ½ (Tr(H_l) / N_l) ‖Q_b(W_l) − W_ref‖²

HAWQ-V2's Ω: the average trace times the *summed* squared perturbation, so a layer with twice the
weights and the same per-weight change costs twice as much (the ½ is left out; no comparison needs
it). The HAWQ-style baseline prices widths against the float weights, MSQ against the forward
weights it trains at its current width. Both methods' knapsacks read this one function.
"""
from __future__ import annotations

import torch

from msq.functional import fake_quantize


@torch.no_grad()
def width_price(sensitivity: float, weight: torch.Tensor, reference: torch.Tensor, scale: torch.Tensor,
                bits: int, grid: str) -> float:
    """max(sensitivity, 0) · ‖Q_bits(weight) − reference‖² (sensitivity = Tr(H_l) / N_l)."""
    change = fake_quantize(weight.detach(), scale, bits, grid) - reference.detach()
    return max(float(sensitivity), 0.0) * float((change ** 2).sum())
