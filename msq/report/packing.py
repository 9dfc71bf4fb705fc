"""Integer codes packed at their bit-width: the weight payload of a quantized checkpoint.

Layout (format version 2, one layer): the signed codes c of ``QuantMixin.integer_weight`` (Q = Δ c,
zero point 0), flattened in row-major order, each written as an n-bit two's-complement field; the
fields are laid end to end in one little-endian bit stream -- element i occupies stream bits
[i n, (i + 1) n), and stream bit k is bit (k mod 8) of byte k // 8, so the first element sits in the
low bits of the first byte. That is the order ONNX uses for INT4/INT2 tensors (and TensorRT for
INT4): at 4 bits the first code is the low nibble, at 8 bits each byte is an int8, at 16 bits each
code is two bytes, low byte first. A layer of N weights at n bits takes ceil(N n / 8) bytes, the last
byte padded with zero bits. ``signed=False`` packs codes in [0, 2^n) instead (binary layers store
their sign this way, see ``msq.report.checkpoint``).

Version 1 files (unsigned codes q = c + 2^(n-1), most significant bit first, the first code in the
high bits) are read by ``unpack_codes_v1``.

>>> import torch
>>> pack_codes(torch.tensor([-3, 2, 1]), 3)     # fields 101, 010, 001 written LSB first: 1010 1010 | 0
tensor([85,  0], dtype=torch.uint8)
>>> unpack_codes(pack_codes(torch.tensor([-3, 2, 1]), 3), 3, 3)
tensor([-3,  2,  1])
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


def code_limits(bits: int, signed: bool = True) -> tuple[int, int]:
    """The codes an n-bit field holds: [-2^(n-1), 2^(n-1) - 1] signed, [0, 2^n - 1] unsigned."""
    return (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)


def pack_codes(codes: torch.Tensor, bits: int, signed: bool = True) -> torch.Tensor:
    """Integer codes (any shape) -> uint8 tensor of ``packed_nbytes(codes.numel(), bits)`` bytes."""
    _check_bits(bits)
    flat = codes.detach().reshape(-1).to(torch.int64).cpu().numpy()
    lo, hi = code_limits(bits, signed)
    if flat.size and (flat.min() < lo or flat.max() > hi):
        kind = "signed" if signed else "unsigned"
        raise ConfigError(f"codes must lie in [{lo}, {hi}] to be packed as {kind} {bits}-bit fields; "
                          f"got values in [{flat.min()}, {flat.max()}]")
    shifts = np.arange(bits, dtype=np.int64)                            # LSB first
    parts = []
    for start in range(0, flat.size, _CHUNK):
        field = flat[start:start + _CHUNK] & ((1 << bits) - 1)          # two's complement in n bits
        planes = ((field[:, None] >> shifts) & 1).astype(np.uint8)      # [chunk, bits], LSB first
        parts.append(np.packbits(planes.reshape(-1), bitorder="little"))
    packed = np.concatenate(parts) if parts else np.zeros(0, dtype=np.uint8)
    return torch.from_numpy(packed)


def _check_length(packed: torch.Tensor, bits: int, count: int) -> np.ndarray:
    need = packed_nbytes(count, bits)
    if packed.numel() < need:
        raise ConfigError(f"packed codes too short: {packed.numel()} bytes for {count} codes at {bits} bits "
                          f"(need {need}); the file is truncated or its layer table is wrong")
    return packed.detach().reshape(-1).cpu().numpy().astype(np.uint8, copy=False)


def _unpack_fields(data: np.ndarray, bits: int, count: int, bitorder: str) -> np.ndarray:
    order = np.arange(bits, dtype=np.int64) if bitorder == "little" else np.arange(bits - 1, -1, -1, dtype=np.int64)
    weights = 1 << order
    step = _CHUNK * bits // 8                                          # bytes per chunk of codes
    out = []
    for first in range(0, count, _CHUNK):
        n = min(_CHUNK, count - first)
        at = first // _CHUNK * step
        raw = data[at: at + packed_nbytes(n, bits)]
        planes = np.unpackbits(raw, count=n * bits, bitorder=bitorder).reshape(n, bits).astype(np.int64)
        out.append(planes @ weights)
    return np.concatenate(out) if out else np.zeros(0, dtype=np.int64)


def unpack_codes(packed: torch.Tensor, bits: int, count: int, signed: bool = True) -> torch.Tensor:
    """Inverse of ``pack_codes``: the first ``count`` codes as int64 (reshape them yourself)."""
    _check_bits(bits)
    fields = _unpack_fields(_check_length(packed, bits, count), bits, count, "little")
    if signed:
        fields = np.where(fields >= 1 << (bits - 1), fields - (1 << bits), fields)
    return torch.from_numpy(fields)


def unpack_codes_v1(packed: torch.Tensor, bits: int, count: int) -> torch.Tensor:
    """Version 1 layout: unsigned codes q in [0, 2^n), most significant bit first (the first code in
    the high bits of the first byte)."""
    _check_bits(bits)
    return torch.from_numpy(_unpack_fields(_check_length(packed, bits, count), bits, count, "big"))
