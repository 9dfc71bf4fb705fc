"""The MSQ regularizer: an L1 penalty on each searched layer's LSBs (METHODS §2).

    R = Σ_l m_l · ||LSB_l||_1 / N_l,   m_l = N_l n_l / Σ_k N_k n_k   (norm "memory", BSQ's weighting)
                                       m_l = 1 / L                  (norm "uniform")
    loss = task_loss + λ(step) · R

Only layers whose width is searched are penalised; fixed layers (first/last) keep their bits, and a
layer already at the minimum width (``prune.min_bits``) is left alone: it cannot drop a bit, so
pushing its LSBs to zero would only cost accuracy.
"""
from __future__ import annotations

import torch

from msq.config import RegConfig
from msq.errors import ConfigError


def layer_weights(params: list[int], bits: list[int], norm: str) -> list[float]:
    """m_l for each layer from its parameter count N_l and width n_l."""
    if norm == "memory":
        total = sum(n * b for n, b in zip(params, bits))
        return [n * b / total for n, b in zip(params, bits)] if total else []
    if norm == "uniform":
        return [1.0 / len(params)] * len(params) if params else []
    raise ConfigError(f"reg.norm = {norm!r} is invalid: allowed 'memory' or 'uniform'")


def lsb_penalty(layers: list, norm: str = "memory", min_bits: int = 1) -> torch.Tensor:
    """R over the given quantized layers (each with ``weight``, ``bits``, ``weight_lsb()``).

    Layers at ``min_bits`` or below (at least 1 bit: no LSB under the MSB) are skipped.
    """
    layers = [layer for layer in layers if layer.bits > max(1, min_bits)]
    if not layers:
        return torch.zeros(())
    params = [layer.weight.numel() for layer in layers]
    weights = layer_weights(params, [layer.bits for layer in layers], norm)
    terms = [m * layer.weight_lsb().abs().sum() / n for m, n, layer in zip(weights, params, layers)]
    return torch.stack(terms).sum()


def lam_at(step: int, cfg: RegConfig, lam: float | None = None) -> float:
    """λ as a function of the (search-phase) step: constant, or a linear warm-up to λ."""
    base = cfg.lam if lam is None else lam
    if cfg.schedule == "linear_warmup" and cfg.warmup_steps > 0:
        return base * min(1.0, (step + 1) / cfg.warmup_steps)
    return base
