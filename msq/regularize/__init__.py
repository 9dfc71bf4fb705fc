"""Regularizers that drive bit-level sparsity."""
from msq.regularize.lsb_l1 import lam_at, layer_weights, lsb_penalty

__all__ = ["lam_at", "layer_weights", "lsb_penalty"]
