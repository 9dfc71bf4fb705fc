"""Integer codes packed at their bit-width: the weight payload of a quantized checkpoint.

Layout (one layer): the unsigned codes q in [0, 2^n) (METHODS §1), flattened in row-major order,
written as one big-endian bit stream -- each code n bits, most significant bit first, codes back to
back, the last byte padded with zero bits. A layer of N weights at n bits takes ceil(N·n / 8) bytes.
At 8 bits that is one code per byte; at 4 bits two codes per byte, the first in the high nibble.

>>> import torch
>>> pack_codes(torch.tensor([5, 2, 7]), 3)          # 101 010 111 (+ 0000000 padding)
tensor([171, 128], dtype=torch.uint8)
>>> unpack_codes(pack_codes(torch.tensor([5, 2, 7]), 3), 3, 3)
tensor([5, 2, 7])
"""
from __future__ import annotations

import numpy as np
import torch

from msq.errors import ConfigError

_CHUNK = 1 << 20   # codes per chunk (a multiple of 8, so every chunk fills whole bytes)


def packed_nbytes(count: int, bits: int) -> int:
    """Bytes that ``count`` codes of ``bits`` bits take: ceil(count · bits / 8)."""
    return (int(count) * int(bits) + 7) // 8


def _check_bits(bits: int) -> int:
    if not isinstance(bits, int) or isinstance(bits, bool) or not 1 <= bits <= 16:
        raise ConfigError(f"bits = {bits!r} is invalid: allowed an integer in [1, 16]")
    return bits


def pack_codes(codes: torch.Tensor, bits: int) -> torch.Tensor:
    """Unsigned integer codes (any shape) -> uint8 tensor of ``packed_nbytes(codes.numel(), bits)`` bytes."""
    _check_bits(bits)
    flat = codes.detach().reshape(-1).to(torch.int64).cpu().numpy()
    if flat.size and (flat.min() < 0 or flat.max() >= 1 << bits):
        raise ConfigError(f"codes must lie in [0, {(1 << bits) - 1}] to be packed at {bits} bits; "
                          f"got values in [{flat.min()}, {flat.max()}]")
    shifts = np.arange(bits - 1, -1, -1, dtype=np.int64)
    parts = []
    for start in range(0, flat.size, _CHUNK):
        chunk = flat[start:start + _CHUNK]
        planes = ((chunk[:, None] >> shifts) & 1).astype(np.uint8)      # [chunk, bits], MSB first
        parts.append(np.packbits(planes.reshape(-1), bitorder="big"))
    packed = np.concatenate(parts) if parts else np.zeros(0, dtype=np.uint8)
    return torch.from_numpy(packed)


def unpack_codes(packed: torch.Tensor, bits: int, count: int) -> torch.Tensor:
    """Inverse of ``pack_codes``: the first ``count`` codes as int64 (reshape them yourself)."""
    _check_bits(bits)
    need = packed_nbytes(count, bits)
    if packed.numel() < need:
        raise ConfigError(f"packed codes too short: {packed.numel()} bytes for {count} codes at {bits} bits "
                          f"(need {need}); the file is truncated or its layer table is wrong")
    data = packed.detach().reshape(-1).cpu().numpy().astype(np.uint8, copy=False)
    weights = (1 << np.arange(bits - 1, -1, -1, dtype=np.int64))
    step = _CHUNK * bits // 8                                          # bytes per chunk of codes
    out = []
    for first in range(0, count, _CHUNK):
        n = min(_CHUNK, count - first)
        raw = data[first // _CHUNK * step: first // _CHUNK * step + packed_nbytes(n, bits)]
        planes = np.unpackbits(raw, count=n * bits, bitorder="big").reshape(n, bits).astype(np.int64)
        out.append(planes @ weights)
    codes = np.concatenate(out) if out else np.zeros(0, dtype=np.int64)
    return torch.from_numpy(codes)
