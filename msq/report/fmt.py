"""How report numbers are written for people (Markdown, HTML, the CLI). One place, so every human
format shows the same digits; the JSON and CSV keep full precision.

>>> size(3632.0), count(1234567), pct(87.74373), sci(0.0199231), ratio(4.3295)
('3.55 KiB', '1,234,567', '87.74%', '1.99e-02', '4.33×')
"""
from __future__ import annotations

from typing import Optional

DASH = "–"


def count(value: Optional[float]) -> str:
    return DASH if value is None else f"{int(value):,}"


def size(n_bytes: Optional[float]) -> str:
    """Bytes in binary units: 3.5 KiB, 1.21 MiB."""
    if n_bytes is None:
        return DASH
    value = float(n_bytes)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(value) < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.3g} {unit}" if value < 100 else f"{value:.0f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"


def pct(value: Optional[float]) -> str:
    return DASH if value is None else f"{value:.2f}%"


def ratio(value: Optional[float]) -> str:
    return DASH if value is None else f"{value:.2f}×"


def bits(value: Optional[float]) -> str:
    return DASH if value is None else f"{value:.2f}"


def fixed3(value: Optional[float]) -> str:
    return DASH if value is None else f"{value:.3f}"


def sci(value: Optional[float]) -> str:
    return DASH if value is None else f"{value:.2e}"


def scale(value: Optional[float]) -> str:
    return DASH if value is None else f"{value:.6g}"


def big(value: Optional[float]) -> str:
    """Large counts with SI prefixes: 5.37 G, 18.4 M."""
    if value is None:
        return DASH
    value = float(value)
    for unit in ("", "k", "M", "G", "T", "P"):
        if abs(value) < 1000 or unit == "P":
            return f"{value:.3g} {unit}".rstrip()
        value /= 1000
    return str(value)


def shape(dims) -> str:
    return "×".join(str(d) for d in dims) if dims else DASH


def seconds(value: Optional[float]) -> str:
    if value is None:
        return DASH
    if value < 60:
        return f"{value:.2f} s" if value < 10 else f"{value:.1f} s"
    minutes, secs = divmod(int(round(value)), 60)
    return f"{minutes // 60}h{minutes % 60:02d}m" if minutes >= 60 else f"{minutes}m{secs:02d}s"


def history(events: list) -> str:
    """A layer's bit history as "8 → 7 (e1) → 6 (e2)": widths and the (0-based) epoch of each prune."""
    if not events:
        return "unchanged"
    parts = [str(events[0]["old_bits"])]
    parts += [f"{e['new_bits']} (e{e['epoch']})" for e in events]
    return " → ".join(parts)


def sensitivity(value: Optional[float], se: Optional[float]) -> str:
    if value is None:
        return DASH
    return f"{value:.2e} ± {se:.1e}" if se is not None else f"{value:.2e}"
