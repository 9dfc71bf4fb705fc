"""Type checks of the config dataclasses' fields, derived from their annotations. No torch import.

Each ``__post_init__`` in ``msq.config`` calls ``check_field_types`` first, so a value of the wrong type
(``data.root = 5``, ``checkpoint = ["a"]``, ``data.augment = "no"``) is refused with the field, the value
and what is allowed, before any range check or any engine code sees it. Booleans are real booleans; the
strings "true"/"false" (any case, as a hand-written JSON file may hold them) are read as what they say,
and every other word or number (yes, no, on, 1, 0) is refused rather than guessed.
"""
from __future__ import annotations

import dataclasses
import functools
import typing
from typing import Any

from msq.errors import ConfigError

BOOL_WORDS = {"true": True, "false": False}

_NAMES = {bool: "true or false", int: "an integer", float: "a number", str: "a string", list: "a list",
          dict: "a JSON object"}


def invalid(section: str, name: str, value: Any, allowed: str, fix: str = "") -> ConfigError:
    """The one-line error every config check raises: field, value given, what is allowed, the fix."""
    hint = f" {fix}" if fix else ""
    return ConfigError(f"{section}.{name} = {value!r} is invalid: allowed {allowed}.{hint}")


@functools.lru_cache(maxsize=None)
def _field_types(cls: type) -> tuple[tuple[str, Any], ...]:
    hints = typing.get_type_hints(cls)
    return tuple((f.name, hints[f.name]) for f in dataclasses.fields(cls))


def _split_optional(tp: Any) -> tuple[Any, bool]:
    """``Optional[X]`` -> (X, True); anything else -> (tp, False)."""
    if typing.get_origin(tp) is typing.Union:
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0], True
    return tp, False


def describe(tp: Any) -> str:
    """What a field of type ``tp`` accepts, in words ("an integer or null")."""
    base, optional = _split_optional(tp)
    text = _NAMES.get(base, getattr(base, "__name__", str(base)))
    return f"{text} or null" if optional else text


def coerce(tp: Any, value: Any) -> tuple[bool, Any]:
    """(whether ``value`` fits type ``tp``, the value to store): "true"/"false" become booleans for bool
    fields and a tuple becomes a list for list fields; nothing else is converted."""
    base, optional = _split_optional(tp)
    if base is Any:          # the section's own check decides (e.g. multibit.act_bits: "same", None or a width)
        return True, value
    if value is None:
        return optional, value
    if base is bool:
        if isinstance(value, bool):
            return True, value
        if isinstance(value, str) and value.strip().lower() in BOOL_WORDS:
            return True, BOOL_WORDS[value.strip().lower()]
        return False, value
    if base is int:
        return isinstance(value, int) and not isinstance(value, bool), value
    if base is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool), value
    if base is list:
        return isinstance(value, (list, tuple)), list(value) if isinstance(value, tuple) else value
    if base in (str, dict):
        return isinstance(value, base), value
    return True, value     # Any, nested sections (checked by their own class) and other annotations


def check_field_types(obj: Any, section: str) -> None:
    """Refuse (ConfigError) the first field of dataclass ``obj`` whose value does not fit its annotation;
    normalize the ones ``coerce`` converts, in place."""
    for name, tp in _field_types(type(obj)):
        value = getattr(obj, name)
        ok, stored = coerce(tp, value)
        if not ok:
            raise invalid(section, name, value, describe(tp))
        if stored is not value:
            setattr(obj, name, stored)
