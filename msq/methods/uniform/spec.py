"""Uniform QAT's registration (torch-free)."""
from __future__ import annotations

from msq.methods.phases import fixed_width_phases
from msq.methods.registry import MethodSpec, register_method

SPEC = register_method(MethodSpec(
    name="uniform", title="Uniform QAT",
    help="Uniform QAT at fixed bits: the honest reference point for compression vs accuracy.",
    method_path="msq.methods.uniform.method:UniformMethod", phases=fixed_width_phases,
    schedule_help="Pretrain (float), then QAT at the fixed width on MSQ's schedule: the search epochs at the search "
                  "learning rate, then the finetune epochs.",
    phase_help={"pretrain": "float", "qat": "fixed widths, search-phase learning rate", "finetune": "λ off, bits frozen"},
    widths_key="uniform_bits", exportable=True, packs_checkpoint=True, reference=True, data_parallel=True,
    symbol="diamond"))
