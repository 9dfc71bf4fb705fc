"""Multi-bit's registration (torch-free)."""
from __future__ import annotations

from typing import TYPE_CHECKING

from msq.methods.multibit.config import MultiBitConfig
from msq.methods.registry import MethodSpec, register_method
from msq.training.schedule import Phase

if TYPE_CHECKING:  # pragma: no cover
    from msq.config import RunConfig


def multibit_phases(cfg: "RunConfig") -> list[Phase]:
    """pretrain (float), then "multibit" for search + finetune epochs (the budget of uniform QAT)."""
    t = cfg.train
    return [Phase("pretrain", t.pretrain_epochs, t.lr, "cosine", quantized=False),
            Phase("multibit", t.search_epochs + t.finetune_epochs, t.search_lr or t.lr, "cosine")]


def multibit_phase_note(phase: str, config: dict) -> str:
    """The multi-bit phase's note for one run: whether each width trains on its own coreset or on all the data."""
    if phase != "multibit":
        return ""
    fraction = (config.get("multibit") or {}).get("coreset_fraction", 1.0)
    return "every width, each on its own coreset" if fraction < 1 else "every width on all the data"


SPEC = register_method(MethodSpec(
    name="multibit", title="Multi-bit",
    help="Multi-bit (EMQ): one network for several widths, with bias correction and coresets.",
    method_path="msq.methods.multibit.method:MultiBitMethod", phases=multibit_phases,
    schedule_help="Pretrain (float), then multi-bit training for search + finetune epochs: every step trains every "
                  "width (each on its own coreset when the fraction is below 1).",
    phase_help={"pretrain": "float", "multibit": "every width each step"},
    config_key="multibit", config_class=MultiBitConfig, widths_key="multibit.bits",
    panels=("widths",), page="multibit", page_label="Every width, coresets and the what-if mixer",
    page_icon=":material/stacked_line_chart:", one_allocation=False, symbol="triangle-up",
    phase_note=multibit_phase_note))
