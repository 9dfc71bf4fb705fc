"""Package attributes imported on first use, so ``import msq`` (and ``msq.report``, ``msq.deploy``)
stays cheap: torch is loaded only when an attribute that needs it is touched.

    __getattr__ = lazy_attributes(__name__, {"Trainer": "msq.training.trainer"}, globals())
"""
from __future__ import annotations

import importlib
from typing import Callable


def lazy_attributes(package: str, table: dict[str, str], namespace: dict) -> Callable[[str], object]:
    """A module-level ``__getattr__``: ``name`` in ``table`` is read from module ``table[name]`` once and
    kept in the package's ``namespace``; any other name is an AttributeError naming the package."""
    def __getattr__(name: str):
        if name in table:
            value = getattr(importlib.import_module(table[name]), name)
            namespace[name] = value
            return value
        raise AttributeError(f"module {package!r} has no attribute {name!r}")
    return __getattr__
