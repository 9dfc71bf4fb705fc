"""Each config field's help text lives on the field itself, as dataclass metadata. No torch import.

The sections declare their fields with ``described`` (``field(default=..., metadata={"help": ...})``);
``msq.config.field_help("reg.lam")`` reads the text back, and the CLI's ``--help`` and the dashboard's
launch form both show that one text.

    >>> from dataclasses import dataclass
    >>> @dataclass
    ... class Example:
    ...     width: int = described(8, "bits per weight")
    ...     names: list = described(factory=list, help="module names")
    >>> help_of(Example, "width"), Example().names
    ('bits per weight', [])
"""
from __future__ import annotations

import dataclasses
from typing import Any

HELP = "help"   # the metadata key


def described(default: Any = dataclasses.MISSING, help: str = "", *,
              factory: Any = dataclasses.MISSING) -> Any:
    """A dataclass field with its help text: ``default``, or ``factory`` for a mutable default (lists)."""
    return dataclasses.field(default=default, default_factory=factory, metadata={HELP: help})


def help_of(cls: type, name: str) -> str:
    """The help text of field ``name`` of dataclass ``cls`` ("" when it has none); KeyError when no such field."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    return fields[name].metadata.get(HELP, "")
