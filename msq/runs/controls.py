"""The controls a running worker takes from the store (``RunStore.add_control``), named once, and the
one check of a live λ. Pure Python (no torch): the runner, the trainer, the store callback, the CLI
and the dashboard's launch form all read it.

    store.add_control(run_id, LAM, check_lam(64.0))   # the worker applies it at its next step
    store.add_control(run_id, STOP, "stopped by user")
"""
from __future__ import annotations

import math

from msq.errors import ConfigError
from msq.methods.msq.config import LAM_RANGE   # the λ a run accepts, at launch (reg.lam) and live

LAM = "lam"       # value: the new λ (a method's live strength, MSQ's reg.lam or BSQ's bsq.decay)
STOP = "stop"     # value: the reason, recorded as the run's stop reason
KINDS = (STOP, LAM)


def is_valid_lam(value: object) -> bool:
    """A real number (not a bool) that is finite and inside ``LAM_RANGE``."""
    low, high = LAM_RANGE
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    return number and math.isfinite(value) and low <= value <= high


def check_lam(value: object) -> float:
    """``value`` as a float if ``is_valid_lam``; else the ConfigError every λ entry point raises."""
    if not is_valid_lam(value):
        low, high = LAM_RANGE
        raise ConfigError(f"reg.lam = {value!r} is invalid: allowed a number in [{low}, {high}]")
    return float(value)
