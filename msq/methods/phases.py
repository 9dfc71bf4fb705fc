"""The phase plans of the built-in methods (torch-free: the registry, the progress bar and the
trainer all read them from here).

MSQ's plan is the reference schedule; every fixed-allocation method (uniform, HAWQ-style) trains
on it epoch for epoch and learning rate for learning rate, so comparisons differ only in how the
widths were chosen.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from msq.training.schedule import Phase

if TYPE_CHECKING:  # pragma: no cover
    from msq.config import RunConfig

# R10 preferred numbers (10 per decade): the log grids of the live strength sliders
R10 = (1, 1.25, 1.6, 2, 2.5, 3.2, 4, 5, 6.4, 8)


def log_grid(first_decade: int, last_decade: int, top: float) -> tuple:
    """R10 values from 10**first_decade up to (not including) 10**(last_decade + 1), plus ``top``."""
    return tuple(sorted({float(f"{m * 10.0 ** e:.6g}") for e in range(first_decade, last_decade + 1)
                         for m in R10} | {float(top)}))


def search_phases(cfg: "RunConfig") -> list[Phase]:
    """pretrain (float) -> search (λ·R on, pruning on) -> finetune (λ off, bits frozen)."""
    t = cfg.train
    return [
        Phase("pretrain", t.pretrain_epochs, t.lr, "cosine", quantized=False),
        Phase("search", t.search_epochs, t.search_lr or t.lr, "constant", regularize=True, prune=True),
        Phase("finetune", t.finetune_epochs, t.finetune_lr or t.lr / 4, "cosine"),
    ]


def fixed_width_phases(cfg: "RunConfig") -> list[Phase]:
    """The schedule of every fixed-allocation reference: float pretraining, then the search phase's
    epochs at its constant rate ("qat": quantized, no regularizer, no pruning), then MSQ's finetune."""
    t = cfg.train
    return [
        Phase("pretrain", t.pretrain_epochs, t.lr, "cosine", quantized=False),
        Phase("qat", t.search_epochs, t.search_lr or t.lr, "constant"),
        Phase("finetune", t.finetune_epochs, t.finetune_lr or t.lr / 4, "cosine"),
    ]
