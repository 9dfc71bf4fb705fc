"""HAWQ-V2-style baseline: one-shot Hessian-trace allocation under a budget, then QAT (``--method hawq``)."""
from msq.training.knapsack import allocate, brute_force_allocate
from msq.baselines.hawq.method import HAWQMethod
from msq.training.methods import register_method

register_method("hawq", HAWQMethod)

__all__ = ["HAWQMethod", "allocate", "brute_force_allocate"]
