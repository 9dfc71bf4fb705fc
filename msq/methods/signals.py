"""Per-layer signals logged every log step (METHODS §2), as vectors in layer order."""
from __future__ import annotations

import torch

from msq.functional import dequantize_weight_codes, moved_by_drop, weight_codes

LAYER_METRICS = ("bits", "lsb_density", "lsb_l1", "quant_error")


@torch.no_grad()
def layer_signals(layers: list) -> dict[str, list[float]]:
    """bits n_l, LSB density d_l (fraction of weights a one-bit drop would move: the odd codes),
    ||LSB||_1/N_l = d_l 2^(1-n), and the quantization error ||Q_n(W) - W||^2 / N_l, for each
    (name, layer) in ``layers``, on each layer's own grid."""
    out = {key: [] for key in LAYER_METRICS}
    for _, layer in layers:
        if hasattr(layer, "bit_signals"):  # a layer on its own grid (BSQ bit planes) measures itself
            for key, value in layer.bit_signals().items():
                out[key].append(value)
            continue
        grid = getattr(layer, "grid", "affine")
        codes = weight_codes(layer.weight, layer.scale, layer.bits, grid)
        density = float(moved_by_drop(codes, layer.bits, grid).float().mean()) if layer.bits > 1 else 0.0
        error = float(torch.mean((dequantize_weight_codes(codes, layer.scale, layer.bits, grid) - layer.weight) ** 2))
        out["bits"].append(float(layer.bits))
        out["lsb_density"].append(density)
        out["lsb_l1"].append(density * 2.0 ** (1 - layer.bits))
        out["quant_error"].append(error)
    return out
