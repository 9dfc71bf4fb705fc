"""Small pure helpers of the store: float32 vector BLOBs and downsampling by evenly spaced rows."""
from __future__ import annotations

import sys
from array import array

NAN32 = array("f", [float("nan")]).tobytes()
_SWAP = sys.byteorder != "little"   # BLOBs are little-endian float32 on every machine


def pack_vector(values) -> bytes:
    """Floats in layer order -> a float32 BLOB (4 bytes per layer); a None (no value for that layer,
    e.g. no sensitivity yet) becomes NaN."""
    try:
        vec = array("f", values)
    except TypeError:
        vec = array("f", [float("nan") if v is None else float(v) for v in values])
    if _SWAP:
        vec.byteswap()
    return vec.tobytes()


def unpack_into(out: array, blob: bytes) -> None:
    """Append a BLOB's floats to ``out`` (an ``array('f')``) without building Python floats."""
    start = len(out)
    out.frombytes(blob)
    if _SWAP:
        tail = out[start:]
        tail.byteswap()
        out[start:] = tail


def unpack_vector(blob: bytes) -> list[float]:
    out = array("f")
    unpack_into(out, blob)
    return out.tolist()


def evenly_spaced(count: int, max_points: int | None) -> list[int]:
    """Indices of at most ``max_points`` rows out of ``count``, evenly spaced, always keeping the first
    and the latest (a live chart must show where the run is now). ``None`` keeps every row."""
    if max_points is None or count <= max_points:
        return list(range(count))
    if max_points < 1:
        raise ValueError(f"max_points = {max_points!r} is invalid: allowed an integer >= 1 (or None for all rows)")
    if max_points == 1:
        return [count - 1]
    span = (count - 1) / (max_points - 1)
    return sorted({round(i * span) for i in range(max_points)})
