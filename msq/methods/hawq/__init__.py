"""HAWQ-V2-style baseline: one-shot Hessian-trace allocation under a budget, then QAT (``--method hawq``).

    spec.py     its registration (torch-free)       method.py   HAWQMethod (msq.methods.knapsack allocates)
"""
from msq.methods.hawq.spec import SPEC

__all__ = ["SPEC"]
