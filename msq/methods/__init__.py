"""Training methods, one folder each, and the registry everything else reads (METHODS.md; DESIGN.md).

    msq/methods/
      registry.py   MethodSpec, register_method, get_method, list_methods   (torch-free)
      base.py       Method: the hooks the one training loop (msq.training.trainer) calls
      phases.py     the built-in phase plans (torch-free)
      msq/ uniform/ hawq/ bsq/ multibit/   spec.py (registration, torch-free), config.py (its section),
                                           method.py (its Method), and its own helpers
      budget.py knapsack.py signals.py     shared by several methods

Importing this package registers the built-in methods and imports no torch. The modules named in
``$MSQ_METHOD_MODULES`` (comma-separated; each registers its own method) are imported at the first
question to the registry, so background workers, which are fresh processes, know those methods too:

    from msq.methods import get_method, list_methods
    get_method("bsq").knob.label      # 'BSQ decay α (group-Lasso strength)'
    create_method(cfg)                # the cfg.method's Method (imports its torch module)
"""
from __future__ import annotations

import importlib

from msq.methods.registry import (PLUGINS_ENV, BUDGET_NONE, BUDGET_OPTIONAL, BUDGET_REQUIRED, LiveKnob, MethodSpec, all_methods,
                                  find_method, get_method, list_methods, methods_where, register_method,
                                  unregister_method)

BUILTIN = ("msq", "uniform", "bsq", "multibit", "hawq")    # registration order = the order they are offered in
DEFAULT_METHOD = "msq"     # what a RunConfig trains unless it says otherwise
for _name in BUILTIN:
    importlib.import_module(f"msq.methods.{_name}")

def create_method(cfg):
    """The ``Method`` that trains ``cfg`` (``cfg.method``'s spec builds it)."""
    return get_method(cfg.method).create(cfg)


__all__ = ["BUDGET_NONE", "BUDGET_OPTIONAL", "BUDGET_REQUIRED", "BUILTIN", "DEFAULT_METHOD", "PLUGINS_ENV", "LiveKnob", "MethodSpec", "all_methods",
           "create_method", "find_method", "get_method", "list_methods", "methods_where", "register_method",
           "unregister_method"]
