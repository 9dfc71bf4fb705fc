"""Size and cost accounting, one definition everywhere (METHODS §6). Pure Python, no torch.

Over the quantized weight layers only (biases and BatchNorm stay float and are counted separately):
    compression ratio = 32 · Σ N_l / Σ N_l n_l
    average bits      = Σ N_l n_l / Σ N_l
    model size        = Σ N_l n_l / 8 bytes  +  4 bytes per float parameter
    bit-ops           = Σ MACs_l · n_l · a_l   (a_l = 32 when activations are float)

>>> compression_ratio([100, 300], [8, 2])
11.636363636363637
"""
from __future__ import annotations

from typing import Optional, Sequence


def weight_bits(params: Sequence[int], bits: Sequence[int]) -> int:
    return sum(int(n) * int(b) for n, b in zip(params, bits))


def average_bits(params: Sequence[int], bits: Sequence[int]) -> float:
    total = sum(params)
    return weight_bits(params, bits) / total if total else 0.0


def compression_ratio(params: Sequence[int], bits: Sequence[int]) -> float:
    used = weight_bits(params, bits)
    return 32.0 * sum(params) / used if used else 0.0


def model_size_bytes(params: Sequence[int], bits: Sequence[int], float_params: int) -> float:
    """Quantized weights at their widths plus every other parameter at 32 bits."""
    return weight_bits(params, bits) / 8.0 + 4.0 * float_params


def bit_ops(macs: Sequence[int], bits: Sequence[int], act_bits: Optional[Sequence[Optional[int]]] = None) -> int:
    acts = act_bits or [None] * len(macs)
    return sum(int(m) * int(b) * (32 if a is None else int(a)) for m, b, a in zip(macs, bits, acts))


def summarize(params: Sequence[int], bits: Sequence[int], float_params: int, macs: Sequence[int] = (),
              act_bits: Optional[Sequence[Optional[int]]] = None) -> dict:
    """All the totals the reports, the dashboard and result.json show, from one place."""
    return {
        "quantized_params": int(sum(params)),
        "float_params": int(float_params),
        "average_bits": average_bits(params, bits),
        "compression": compression_ratio(params, bits),
        "model_size_bytes": model_size_bytes(params, bits, float_params),
        "float_model_size_bytes": 4.0 * (sum(params) + float_params),
        "bit_ops": bit_ops(macs, bits, act_bits) if macs else 0,
    }
