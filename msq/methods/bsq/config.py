"""The ``bsq`` section of RunConfig. No torch."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from msq.config_checks import float_in as _float_in, int_in as _int_in
from msq.config_help import described
from msq.config_types import check_field_types


@dataclass
class BSQConfig:
    """Baseline: bit-plane trainable tensors with group Lasso (METHODS §7)."""
    decay: float = described(5e-3, "α of BSQ: strength of the bit-plane group Lasso.")
    requant_every: int = described(4, "Epochs between BSQ's re-quantizations: bit planes are rounded to {0, 1}, "
                                   "all-zero planes dropped (the layer loses bits) and overflowing ones grown.")
    max_bits: int = described(8, "Widest a layer may grow to at a re-quantization (beyond it, codes are clamped).")
    search_lr: Optional[float] = described(
        None, "Learning rate of the bit planes' search phase (null = train.lr; MSQ's small train.search_lr barely "
              "moves a plane).")

    def __post_init__(self) -> None:
        s = "bsq"
        check_field_types(self, s)
        _float_in(s, "decay", self.decay, 0.0, 1e3)
        _int_in(s, "requant_every", self.requant_every, 1)
        _int_in(s, "max_bits", self.max_bits, 2, 16)
        if self.search_lr is not None:
            _float_in(s, "search_lr", self.search_lr, 0.0, 10.0, lo_open=True)
