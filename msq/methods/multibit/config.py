"""The ``multibit`` section of RunConfig. No torch."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from msq.config_checks import check as _check, choice as _choice, float_in as _float_in, int_in as _int_in
from msq.config_help import described
from msq.config_types import check_field_types

CORESET_SELECTIONS = ("topk", "weighted")
CORESET_SCORES = ("el2n", "random")
MULTIBIT_CALIBRATIONS = ("mse", "max")


@dataclass
class MultiBitConfig:
    """Any-precision training with EMQ's two techniques (METHODS §8)."""
    bits: list = described(factory=lambda: [2, 3, 4, 8],
                           help="The widths one any-precision network is trained for, e.g. 2, 3, 4, 8.")
    act_bits: Any = described("same", "Activation width: the same as each weight width (same), float (none), or "
                              "one fixed width 2..16.")
    bias_correction: bool = described(True, "EMQ's weight bias correction: each width's quantized weights get the "
                                      "float weights' per-channel mean and std, so all widths share one BatchNorm.")
    shared_bn: bool = described(True, "One BatchNorm for every width (needs bias correction to work well); off = "
                                "one BatchNorm per width, the Any-Precision baseline.")
    coreset_fraction: float = described(1.0, "Fraction of the training set each width trains on per epoch (its own "
                                        "EL2N-chosen subset). 1.0 = full-data multi-bit training; 0.2 = EMQ's "
                                        "headline setting.")
    reselect_every: int = described(2, "Epochs between coreset re-selections (importance drifts as the network "
                                    "learns).")
    selection: str = described("weighted", "weighted: sample ∝ score (keeps some easy samples); topk: only the "
                               "hardest (2.6 points worse at a 20% coreset in bench/multibit.py).")
    score: str = described("el2n", "el2n: ‖softmax − one-hot‖₂ with each width's own model; random: a "
                           "uniformly random subset (the ablation).")
    eval_bits: list = described(factory=lambda: [5, 6, 7],
                                help="Widths that are evaluated every epoch but never trained (e.g. 5, 6, 7): how "
                                     "well the shared weights generalise to unseen precisions. Empty = none.")
    calibration: str = described("mse", "Grids when quantized training starts: mse (the best grid over the widths) "
                                 "or max (max|W|).")

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
