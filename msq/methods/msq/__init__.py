"""MSQ (METHODS §2-4): the LSB L1 penalty, LSB pruning and Hessian-aware steps (``--method msq``).

    spec.py      its registration (torch-free)      config.py   the reg / prune / hessian sections
    method.py    MSQMethod: the search              pruning.py  which layers drop LSBs at a check
"""
from msq.methods.msq.spec import SPEC

__all__ = ["SPEC"]
