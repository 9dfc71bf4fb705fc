"""BSQ's bit-plane group Lasso (METHODS §7), as in the BSQ authors' code.

    B_l = Σ_i ‖[Wp_i ; Wn_i]‖₂                   one group per bit position: the positive and negative
                                                 planes of bit i together
    R   = Σ_l (N_l n_l / Σ_k N_k) · B_l           memory weighting; Σ_k N_k over the bit-planed layers
    loss = task_loss + decay · R

A group whose norm reaches zero is an all-zero plane, which re-quantization then drops.
"""
from __future__ import annotations

import torch


class _PlaneGroupNorms(torch.autograd.Function):
    """Norms by one fused reduction; backward = planes · (grad_i / norm_i) in one broadcast multiply.

    Written out (not left to ``vector_norm``'s generic backward) so BSQ pays one pass over its planes
    here, which keeps the MSQ-vs-BSQ timing honest. An all-zero group gets a zero subgradient (no NaN).
    """

    @staticmethod
    def forward(ctx, planes: torch.Tensor) -> torch.Tensor:
        norms = torch.linalg.vector_norm(planes.flatten(2), dim=(0, 2))
        ctx.save_for_backward(planes, norms)
        return norms

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        planes, norms = ctx.saved_tensors
        factor = torch.where(norms > 0, grad / norms.clamp_min(1e-30), torch.zeros_like(norms))
        return planes * factor.view(1, -1, *([1] * (planes.dim() - 2)))


def plane_group_norms(planes: torch.Tensor) -> torch.Tensor:
    """‖[Wp_i ; Wn_i]‖₂ for each bit position i of planes [2, n, *shape]: shape [n]."""
    return _PlaneGroupNorms.apply(planes)


def group_lasso_penalty(layers: list) -> torch.Tensor:
    """R over BSQ layers (each with ``planes`` [2, n, ...] and ``bits``); a 0-d tensor."""
    if not layers:
        return torch.zeros(())
    counts = [layer.planes[0, 0].numel() for layer in layers]
    total = float(sum(counts))
    terms = [plane_group_norms(layer.planes).sum() * (n * layer.bits / total) for n, layer in zip(counts, layers)]
    return torch.stack(terms).sum()
