"""The HAWQ-style baseline's registration (torch-free)."""
from __future__ import annotations

from msq.methods.phases import fixed_width_phases
from msq.methods.registry import BUDGET_REQUIRED, MethodSpec, register_method

SPEC = register_method(MethodSpec(
    name="hawq", title="HAWQ-style",
    help="HAWQ-style baseline: widths chosen once from the float model's Hessian traces for the budget (exact "
         "knapsack), then QAT at those widths.",
    method_path="msq.methods.hawq.method:HAWQMethod", phases=fixed_width_phases,
    schedule_help="Pretrain (float), then widths chosen once from the float model's Hessian for the budget, then QAT "
                  "at those widths on MSQ's schedule (search epochs, then finetune epochs).",
    phase_help={"pretrain": "float", "qat": "fixed widths, search-phase learning rate", "finetune": "λ off, bits frozen"},
    budget=BUDGET_REQUIRED, exportable=True, estimates_hessian=True, symbol="circle-open"))
