"""A toy training method from outside msq/: "float" trains the model in float for all its epochs and
never quantizes. It is one module and one registration; importing it registers it
(``MSQ_METHOD_MODULES=float_method`` makes background workers import it too)."""
from __future__ import annotations

from msq.methods import MethodSpec, register_method
from msq.methods.base import Method
from msq.training.schedule import Phase


def float_phases(cfg) -> list[Phase]:
    """Every epoch of the run in one float phase."""
    return [Phase("float", cfg.train.total_epochs, cfg.train.lr, "cosine", quantized=False)]


class FloatMethod(Method):
    """The base Method's hooks as they are: its layers exist (so the report has rows) but never leave float mode."""
    name = "float"


SPEC = register_method(MethodSpec(
    name="float", title="Float", help="Float training: never quantizes (the registry's toy method).",
    method_path=f"{__name__}:FloatMethod", phases=float_phases,
    schedule_help="Every epoch (pretrain + search + finetune) trains the float model.",
    phase_help={"float": "float weights, never quantized"}), replace=True)
