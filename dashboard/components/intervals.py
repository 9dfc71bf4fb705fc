"""Hutchinson traces as intervals: a trace estimate is a mean of random probes, so it is shown with its
standard error, and a negative estimate (possible: Tr(H) of a non-convex loss, or noise around 0) is
never shown without one. Pure.

    >>> trace_text(2.5e-3, 4e-4)
    '2.50e-03 ± 4.0e-04'
    >>> trace_text(-1e-4, None)
    '< 0 (noise? no std error stored)'
    >>> ratio_text(3e-3, 1e-3, 2e-3)
    '1.50 ± 0.50'
"""
from __future__ import annotations

from typing import Optional


def trace_text(value: Optional[float], se: Optional[float]) -> str:
    if value is None:
        return "—"
    if se is None:
        return f"{value:.2e}" if value >= 0 else "< 0 (noise? no std error stored)"
    return f"{value:.2e} ± {se:.1e}"


def ratio_text(value: Optional[float], se: Optional[float], mean: Optional[float]) -> str:
    """Tr(H_l)/N_l over the mean of the layers, ± the layer's std error over the mean (the mean's own
    noise is left out). A mean at or below 0 makes the ratio meaningless: it says so."""
    if value is None or mean is None:
        return "—"
    if mean <= 0:
        return "— (mean ≤ 0)"
    if se is None:
        return f"{value / mean:.2f}" if value >= 0 else "< 0 (no std error)"
    return f"{value / mean:.2f} ± {se / mean:.2f}"
