"""MSQ's registration (torch-free)."""
from __future__ import annotations

from msq.methods.phases import log_grid, search_phases
from msq.methods.registry import BUDGET_OPTIONAL, LiveKnob, MethodSpec, register_method

SPEC = register_method(MethodSpec(
    name="msq", title="MSQ",
    help="MSQ: L1 on the differentiable LSBs, prune LSBs that became zero, Hessian-aware steps.",
    method_path="msq.methods.msq.method:MSQMethod", phases=search_phases,
    schedule_help="Epochs per phase: pretrain (float) → search (λ on, pruning) → finetune (λ off, bits frozen).",
    phase_help={"pretrain": "float", "search": "λ on, LSBs pruned", "finetune": "λ off, bits frozen"},
    knob=LiveKnob(key="reg.lam", symbol="λ", meaning="LSB-penalty strength", penalty="λ·R (LSB penalty)",
                  grid=log_grid(-1, 3, 1e4),
                  effect="λ scales the L1 penalty on each layer's least-significant bits: higher λ → more LSBs "
                         "driven to zero → more bits pruned (smaller model), usually at some accuracy cost."),
    budget=BUDGET_OPTIONAL, exportable=True, packs_checkpoint=True, data_parallel=True, estimates_hessian=True,
    symbol="circle"))
