"""Range checks shared by every config section (``msq.config`` and each method's own section in
``msq/methods/<name>/config.py``). Errors name ``section.field``, the value, what is allowed and the fix.
No torch import."""
from __future__ import annotations

import math
from typing import Any, Optional

from msq.config_types import invalid


def check(ok: bool, section: str, name: str, value: Any, allowed: str, fix: str = "") -> None:
    """Raise a ConfigError naming ``section.name``, the value, the allowed range and the fix."""
    if not ok:
        raise invalid(section, name, value, allowed, fix)


def int_in(section: str, name: str, value: Any, lo: int, hi: Optional[int] = None) -> None:
    ok = isinstance(value, int) and not isinstance(value, bool) and value >= lo and (hi is None or value <= hi)
    allowed = f"an integer in [{lo}, {hi}]" if hi is not None else f"an integer >= {lo}"
    check(ok, section, name, value, allowed)


def float_in(section: str, name: str, value: Any, lo: float, hi: float = math.inf, lo_open: bool = False) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    ok = ok and (value > lo if lo_open else value >= lo) and value <= hi
    left = "(" if lo_open else "["
    check(ok, section, name, value, f"a number in {left}{lo}, {hi}]")


def choice(section: str, name: str, value: Any, choices: tuple) -> None:
    check(value in choices, section, name, value, "one of " + ", ".join(map(repr, choices)))

