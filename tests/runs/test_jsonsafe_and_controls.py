"""The shared helpers under the store: JSON-safe values (``msq.jsonsafe``) and the control keys and λ
check (``msq.runs.controls``) every entry point uses."""
import json
import math

import pytest

from msq.errors import ConfigError
from msq.jsonsafe import finite_or_none, number_or_text, round_finite, significant_finite
from msq.runs.controls import KINDS, LAM, LAM_RANGE, STOP, check_lam, is_valid_lam
from msq.runs.store import to_json


class Scalar:
    """Stands in for a numpy/torch scalar: not a float, but float() takes it."""
    def __init__(self, value: float) -> None:
        self.value = value

    def __float__(self) -> float:
        return self.value


def test_finite_or_none_cleans_nested_values_and_keeps_the_rest():
    value = {"a": float("nan"), 1: [float("inf"), (2, -float("inf"))], "s": "x", "b": True, "n": None, "f": 0.5}
    assert finite_or_none(value) == {"a": None, "1": [None, [2, None]], "s": "x", "b": True, "n": None, "f": 0.5}
    thing = object()
    assert finite_or_none([thing]) == [thing]                       # kept as given without ``convert``
    assert finite_or_none([Scalar(float("nan")), Scalar(2.0), thing], convert=number_or_text) == [None, 2.0, str(thing)]


def test_store_json_is_strict_json_with_nan_as_null():
    thing = object()
    assert json.loads(to_json({"x": [float("nan"), Scalar(1.5)], "y": thing})) == {"x": [None, 1.5], "y": str(thing)}


def test_rounding_variants_drop_non_finite_values():
    assert round_finite(0.4999000132083893, 4) == 0.4999 and round_finite(3, 2) == 3
    assert round_finite(None, 2) is None and round_finite(float("nan"), 2) is None
    assert significant_finite(0.4999000132083893) == 0.4999 and significant_finite(123456789.0) == 123457000.0
    assert significant_finite(float("inf")) is None and significant_finite(7) == 7 and significant_finite(None) is None


def test_control_keys_and_the_lam_check():
    assert (LAM, STOP) == ("lam", "stop") and set(KINDS) == {LAM, STOP}
    low, high = LAM_RANGE
    for good in (low, high, 32, 0.5):
        assert is_valid_lam(good) and check_lam(good) == float(good)
    for bad in (-1.0, high * 2, math.nan, math.inf, True, "3", None):
        assert not is_valid_lam(bad)
        with pytest.raises(ConfigError, match=r"reg.lam = .* is invalid: allowed a number in \[0.0, 1000000.0\]$"):
            check_lam(bad)
