"""BSQ's registration (torch-free)."""
from __future__ import annotations

from typing import TYPE_CHECKING, Optional

from msq.methods.bsq.config import BSQConfig
from msq.methods.phases import log_grid
from msq.methods.registry import LiveKnob, MethodSpec, register_method
from msq.training.schedule import Phase

if TYPE_CHECKING:  # pragma: no cover
    from msq.config import RunConfig


def bsq_phases(cfg: "RunConfig") -> list[Phase]:
    """pretrain (float) -> search (bit planes, group Lasso, re-quantized) -> finetune (bits frozen)."""
    t, b = cfg.train, cfg.bsq
    search_lr = b.search_lr or t.lr
    return [
        Phase("pretrain", t.pretrain_epochs, t.lr, "cosine", quantized=False),
        Phase("search", t.search_epochs, search_lr, "constant", regularize=True),
        Phase("finetune", t.finetune_epochs, t.finetune_lr or search_lr / 4, "cosine"),
    ]


def bsq_layer_reason(bits: Optional[int], history: list, config: dict) -> str:
    """Why a layer has its width: BSQ changes widths only at re-quantizations, when the group Lasso has
    emptied whole bit planes (``history``: the layer's width changes, logged as prune events)."""
    decay = (config.get("bsq") or {}).get("decay")
    strength = f" (decay α = {decay:g})" if decay is not None else ""
    if not history:
        return f"keeps {bits} bits: no bit plane was all-zero at a re-quantization{strength}"
    chain = "→".join([str(history[0].get("old_bits"))] + [str(p.get("new_bits")) for p in history])
    return (f"{chain} bits at {len(history)} re-quantization{'s' if len(history) > 1 else ''}: the group Lasso "
            f"emptied whole bit planes{strength}, which were dropped")


SPEC = register_method(MethodSpec(
    name="bsq", title="BSQ",
    help="BSQ baseline: trainable bit planes with a group Lasso; re-quantized periodically.",
    method_path="msq.methods.bsq.method:BSQMethod", phases=bsq_phases,
    schedule_help="Epochs per phase: pretrain (float) → search (bit planes with the group Lasso, re-quantized every "
                  "few epochs) → finetune (bits frozen).",
    phase_help={"pretrain": "float", "search": "bit planes, group Lasso", "finetune": "bits frozen"},
    config_key="bsq", config_class=BSQConfig,
    knob=LiveKnob(key="bsq.decay", symbol="BSQ decay α", meaning="group-Lasso strength",
                  penalty="α·R (bit-plane group Lasso)", grid=log_grid(-5, -1, 1.0),
                  effect="Higher α pushes whole bit planes to zero faster; a re-quantization then drops them "
                         "(fewer bits)."),
    symbol="square", explain_layer=bsq_layer_reason))
