"""The ``bsq`` section of RunConfig. No torch."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from msq.config_checks import float_in as _float_in, int_in as _int_in
from msq.config_types import check_field_types


@dataclass
class BSQConfig:
    """Baseline: bit-plane trainable tensors with group Lasso (METHODS §7)."""
    decay: float = 5e-3              # α, strength of the bit-plane group Lasso
    requant_every: int = 4           # epochs between re-quantizations
    max_bits: int = 8
    search_lr: Optional[float] = None  # learning rate of the bit planes' search phase (None = train.lr;
                                       # MSQ's small train.search_lr barely moves a plane)

    def __post_init__(self) -> None:
        s = "bsq"
        check_field_types(self, s)
        _float_in(s, "decay", self.decay, 0.0, 1e3)
        _int_in(s, "requant_every", self.requant_every, 1)
        _int_in(s, "max_bits", self.max_bits, 2, 16)
        if self.search_lr is not None:
            _float_in(s, "search_lr", self.search_lr, 0.0, 10.0, lo_open=True)
