"""Values made JSON-safe: NaN and ±inf become None (JSON has no such numbers). Standard library only,
so the run store, the reports, the chart specs and the dashboard share this one helper.

    >>> finite_or_none({"acc": float("nan"), "bits": (4, float("inf"))})
    {'acc': None, 'bits': [4, None]}
    >>> round_finite(0.4999000132083893, 4), significant_finite(0.4999000132083893)
    (0.4999, 0.4999)
"""
from __future__ import annotations

import math
from typing import Any, Callable, Optional

_PLAIN = (str, int, bool, type(None))


def finite_or_none(value: Any, convert: Optional[Callable[[Any], Any]] = None) -> Any:
    """``value`` with every non-finite float replaced by None, recursively through dicts (keys made
    str), lists and tuples (made lists). Anything else is kept as given, or, with ``convert``, replaced
    by ``convert(value)`` (cleaned in turn) unless it is a str, int, bool or None."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): finite_or_none(v, convert) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_or_none(v, convert) for v in value]
    if convert is None or isinstance(value, _PLAIN):
        return value
    return finite_or_none(convert(value))


def number_or_text(value: Any) -> float | str:
    """An object JSON cannot hold as its float (a numpy or torch scalar), else its str: the ``convert``
    the run store stores with."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return str(value)


def round_finite(value: Optional[float], digits: int) -> Optional[float]:
    """``value`` rounded to ``digits`` decimals; None for None and non-finite floats."""
    value = finite_or_none(value)
    return None if value is None else round(value, digits)


def significant_finite(value: Any, digits: int = 6) -> Any:
    """A float kept to ``digits`` significant digits (a float32 holds 6-7, so a series stored as float32
    loses nothing and prints short); None for a non-finite float; anything else as given."""
    value = finite_or_none(value)
    return float(f"{value:.{digits}g}") if isinstance(value, float) else value
