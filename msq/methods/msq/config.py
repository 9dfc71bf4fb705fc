"""MSQ's sections of RunConfig: the LSB penalty (``reg``), pruning and the budget (``prune``), the
Hessian estimate (``hessian``). HAWQ-style allocation reads ``prune``'s budget and ``hessian`` too. No torch."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from msq.config_checks import check as _check, choice as _choice, float_in as _float_in, int_in as _int_in
from msq.config_help import described
from msq.config_types import check_field_types

LAM_RANGE = (0.0, 1e6)   # the λ a run accepts, at launch and live (msq.runs.controls checks live values)
REG_NORMS = ("memory", "uniform")
LAM_SCHEDULES = ("constant", "linear_warmup")


@dataclass
class RegConfig:
    """The L1 penalty on the LSBs (METHODS §2)."""
    lam: float = described(32.0, "λ scales the L1 penalty on the weights' least-significant bits. Larger λ pushes "
                           "more LSBs to zero, so more layers lose bits (smaller model) at some cost in accuracy. "
                           "Try a sweep to see the trade-off.")
    norm: str = described("memory", "Layer weighting of the LSB penalty: memory (layer l weighs its memory share "
                          "N_l n_l / Σ N_k n_k) or uniform (1/L each).")
    schedule: str = described("constant", "λ over the steps: constant, or linear_warmup (rising linearly to λ over "
                              "reg.warmup_steps).")
    warmup_steps: int = described(0, "Steps of the linear λ warm-up (reg.schedule linear_warmup).")

    def __post_init__(self) -> None:
        s = "reg"
        check_field_types(self, s)
        _float_in(s, "lam", self.lam, *LAM_RANGE)
        _choice(s, "norm", self.norm, REG_NORMS)
        _choice(s, "schedule", self.schedule, LAM_SCHEDULES)
        _int_in(s, "warmup_steps", self.warmup_steps, 0)


@dataclass
class PruneConfig:
    """When and how LSBs are pruned during the search phase (METHODS §3)."""
    every: int = described(1, "Search epochs between prune checks.")
    threshold: float = described(0.05, "α: a layer's LSB is dropped once its LSB density (the fraction of weights "
                                 "with an odd integer code, averaged over the logged steps since the last check) is "
                                 "at or below α. Larger α prunes earlier and more aggressively.")
    min_bits: int = described(2, "No searched layer is pruned below this width (sign included; 1 = binary on the "
                              "symmetric grid).")
    target_avg_bits: Optional[float] = described(
        None, "Budget: the search ends at this average width over the quantized weights (sign included), within "
              "prune.landing_tolerance under it; λ is raised while the run falls behind the path to it and set to 0 "
              "once it lands.")
    target_compression: Optional[float] = described(
        None, "Budget as a compression ratio X over float32 (= 32 / X average bits); give either this or "
              "prune.target_avg_bits.")
    landing_tolerance: float = described(0.1, "How far under the budget (in average bits) the last prune may land.")
    reach_fraction: float = described(0.5, "The budget is reached after this fraction of the search's prune checks; "
                                      "the rest of the search (λ = 0) and the finetune train the final widths.")
    lam_gain: float = described(2.0, "With a budget, λ is multiplied by this after a check that had to force "
                                "prunes, divided by its square root otherwise, and set to 0 once landed.")

    def __post_init__(self) -> None:
        s = "prune"
        check_field_types(self, s)
        _int_in(s, "every", self.every, 1)
        _float_in(s, "threshold", self.threshold, 0.0, 1.0)
        _int_in(s, "min_bits", self.min_bits, 1, 8)
        if self.target_avg_bits is not None:
            _float_in(s, "target_avg_bits", self.target_avg_bits, 1.0, 32.0)
        if self.target_compression is not None:
            _float_in(s, "target_compression", self.target_compression, 1.0, 32.0)
            _check(self.target_avg_bits is None, s, "target_compression", self.target_compression,
                   "null when prune.target_avg_bits is set", "Give the budget one way: bits or compression.")
        _float_in(s, "landing_tolerance", self.landing_tolerance, 0.0, 8.0)
        _float_in(s, "reach_fraction", self.reach_fraction, 0.0, 1.0, lo_open=True)
        _float_in(s, "lam_gain", self.lam_gain, 1.0, 100.0)

    @property
    def budget_bits(self) -> Optional[float]:
        """The budget as an average width, from either field (None: no budget)."""
        if self.target_avg_bits is not None:
            return float(self.target_avg_bits)
        return None if self.target_compression is None else 32.0 / float(self.target_compression)


@dataclass
class HessianConfig:
    """Hutchinson estimate of each layer's average Hessian trace (METHODS §4)."""
    enabled: bool = described(True, "Hessian-aware pruning (MSQ): layers whose average Hessian trace is clearly below "
                              "the mean (see hessian.z) are insensitive and drop two LSBs at once; the others drop "
                              "one.")
    probes: int = described(4, "Rademacher probes per batch of the Hutchinson estimate: more probes, less noise, "
                            "more time.")
    batches: int = described(16, "Most batches per estimate (with hessian.target_rse it stops earlier once precise).")
    batch_size: int = described(64, "Samples per Hessian batch (cost ~ probes x batch_size).")
    target_rse: Optional[float] = described(
        0.1, "Stop adding batches once every searched layer's relative standard error se/|Tr| is at most this "
             "(null: always use hessian.batches batches).")
    z: float = described(1.96, "Interval half-width in standard errors (1.96: 95%); dropping two LSBs needs "
                         "Tr/N + z·se < mean.")

    def __post_init__(self) -> None:
        s = "hessian"
        check_field_types(self, s)
        _int_in(s, "probes", self.probes, 1, 1000)
        _int_in(s, "batches", self.batches, 1, 1000)
        _int_in(s, "batch_size", self.batch_size, 1, 65536)
        if self.target_rse is not None:
            _float_in(s, "target_rse", self.target_rse, 0.0, 10.0, lo_open=True)
        _float_in(s, "z", self.z, 0.0, 10.0)
