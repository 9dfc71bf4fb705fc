"""The ``multibit`` section of RunConfig. No torch."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from msq.config_checks import check as _check, choice as _choice, float_in as _float_in, int_in as _int_in
from msq.config_types import check_field_types

CORESET_SELECTIONS = ("topk", "weighted")
CORESET_SCORES = ("el2n", "random")
MULTIBIT_CALIBRATIONS = ("mse", "max")


@dataclass
class MultiBitConfig:
    """Any-precision training with EMQ's two techniques (METHODS §8)."""
    bits: list = field(default_factory=lambda: [2, 3, 4, 8])
    act_bits: Any = "same"           # "same" (= each width), an int 2..8, or None/"none" (float)
    bias_correction: bool = True     # weight bias correction: one shared BatchNorm for all widths
    shared_bn: bool = True           # False = one BatchNorm per width (Any-Precision baseline)
    coreset_fraction: float = 1.0    # 1.0 = full-data multi-bit training
    reselect_every: int = 2          # epochs between coreset re-selections
    selection: str = "weighted"      # score-weighted sampling (keeps some easy samples), or "topk" (hardest
                                     # only: 2.6 points worse at a 20% coreset in bench/multibit.py)
    score: str = "el2n"
    eval_bits: list = field(default_factory=lambda: [5, 6, 7])  # widths also evaluated, never trained
    calibration: str = "mse"         # grids when quantized training starts: "mse" over widths, or "max" (max|W|)

    def __post_init__(self) -> None:
        s = "multibit"
        check_field_types(self, s)
        ok = isinstance(self.bits, list) and len(self.bits) > 0 and all(
            isinstance(b, int) and not isinstance(b, bool) and 1 <= b <= 16 for b in self.bits)
        _check(ok and len(set(self.bits)) == len(self.bits), s, "bits", self.bits,
               "a non-empty list of distinct integers in [1, 16]", "Example: [2, 3, 4, 8].")
        if self.act_bits == "none":
            self.act_bits = None
        ok = self.act_bits is None or self.act_bits == "same" or (
            isinstance(self.act_bits, int) and not isinstance(self.act_bits, bool) and 2 <= self.act_bits <= 16)
        _check(ok, s, "act_bits", self.act_bits, "'same', 'none' or an integer in [2, 16]")
        _float_in(s, "coreset_fraction", self.coreset_fraction, 0.0, 1.0, lo_open=True)
        _int_in(s, "reselect_every", self.reselect_every, 1)
        _choice(s, "selection", self.selection, CORESET_SELECTIONS)
        _choice(s, "score", self.score, CORESET_SCORES)
        _choice(s, "calibration", self.calibration, MULTIBIT_CALIBRATIONS)
        ok = isinstance(self.eval_bits, list) and all(
            isinstance(b, int) and not isinstance(b, bool) and 1 <= b <= 16 for b in self.eval_bits)
        _check(ok and len(set(self.eval_bits)) == len(self.eval_bits), s, "eval_bits", self.eval_bits,
               "a list of distinct integers in [1, 16] (may be empty)", "Example: [5, 6, 7].")
