"""Run configuration: plain dataclasses, validated, JSON round-trip. No torch import.

Every field that changes what the engine computes lives here, so a run is fully described by its
``config.json``. The dashboard builds its launch form from these classes; the CLI maps flags onto them.
Errors name the field, the value that came, what is allowed and how to fix it.
"""
from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from typing import Any, Optional

from msq.config_types import check_field_types, invalid
from msq.errors import ConfigError

METHODS = ("msq", "uniform", "bsq", "multibit", "hawq")
REG_NORMS = ("memory", "uniform")
LAM_SCHEDULES = ("constant", "linear_warmup")
OPTIMIZERS = ("sgd", "adam")
CORESET_SELECTIONS = ("topk", "weighted")
CORESET_SCORES = ("el2n", "random")
MULTIBIT_CALIBRATIONS = ("mse", "max")
WEIGHT_GRIDS = ("affine", "symmetric")   # msq.functional.quantize.GRIDS (kept torch-free here)
DATASET_SHAPE_ARGS = ("num_classes", "in_channels", "image_size")   # every model factory gets them from the data


def _check(ok: bool, section: str, name: str, value: Any, allowed: str, fix: str = "") -> None:
    """Raise a ConfigError naming ``section.name``, the value, the allowed range and the fix."""
    if not ok:
        raise invalid(section, name, value, allowed, fix)


def _int_in(section: str, name: str, value: Any, lo: int, hi: Optional[int] = None) -> None:
    ok = isinstance(value, int) and not isinstance(value, bool) and value >= lo and (hi is None or value <= hi)
    allowed = f"an integer in [{lo}, {hi}]" if hi is not None else f"an integer >= {lo}"
    _check(ok, section, name, value, allowed)


def _float_in(section: str, name: str, value: Any, lo: float, hi: float = math.inf,
              lo_open: bool = False) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    ok = ok and (value > lo if lo_open else value >= lo) and value <= hi
    left = "(" if lo_open else "["
    _check(ok, section, name, value, f"a number in {left}{lo}, {hi}]")


def _choice(section: str, name: str, value: Any, choices: tuple) -> None:
    _check(value in choices, section, name, value, "one of " + ", ".join(map(repr, choices)))


@dataclass
class QuantConfig:
    """Which layers are quantized and at what precision they start."""
    init_bits: int = 8            # every searched layer starts here (MSQ prunes down from it)
    keep_first_last: bool = True  # first and last quantized layers stay at fixed_bits, not searched
    fixed_bits: int = 8           # width of layers kept fixed (first/last, or matched by `fixed`)
    exclude: list = field(default_factory=list)  # fnmatch patterns of module names left in float
    fixed: list = field(default_factory=list)    # fnmatch patterns of module names kept at fixed_bits
    act_bits: Optional[int] = None  # None = float activations; 2..8 = PACT-style activation quantization
    act_clip_init: float = 6.0      # initial PACT clip value alpha
    grid: str = "symmetric"         # weight grid: "symmetric" (sign-magnitude: 2 bits ternary, 1 bit binary;
                                    # uniform 1-bit 86.6% vs 35.1% on Fashion-MNIST, bench/pareto.py) or
                                    # "affine" (2^n levels from -s; 1 bit = {-s, 0}); equal at 2-4 bits

    def __post_init__(self) -> None:
        s = "quant"
        check_field_types(self, s)
        _choice(s, "grid", self.grid, WEIGHT_GRIDS)
        _int_in(s, "init_bits", self.init_bits, 2, 8)
        _int_in(s, "fixed_bits", self.fixed_bits, 2, 16)
        for name in ("exclude", "fixed"):
            value = getattr(self, name)
            _check(isinstance(value, list) and all(isinstance(p, str) for p in value), s, name, value,
                   "a list of module-name patterns such as ['fc3', 'layer1.*']")
        if self.act_bits is not None:
            _int_in(s, "act_bits", self.act_bits, 2, 8)
        _float_in(s, "act_clip_init", self.act_clip_init, 0.0, lo_open=True)


@dataclass
class RegConfig:
    """The L1 penalty on the LSBs (METHODS §2)."""
    lam: float = 32.0                # strength λ of the LSB penalty
    norm: str = "memory"             # weight of layer l: memory share N_l n_l / Σ N_k n_k, or uniform 1/L
    schedule: str = "constant"       # λ(step): constant, or linear warm-up over warmup_steps
    warmup_steps: int = 0

    def __post_init__(self) -> None:
        s = "reg"
        check_field_types(self, s)
        _float_in(s, "lam", self.lam, 0.0, 1e6)
        _choice(s, "norm", self.norm, REG_NORMS)
        _choice(s, "schedule", self.schedule, LAM_SCHEDULES)
        _int_in(s, "warmup_steps", self.warmup_steps, 0)


@dataclass
class PruneConfig:
    """When and how LSBs are pruned during the search phase (METHODS §3)."""
    every: int = 1                   # check every `every` search epochs
    threshold: float = 0.05          # α: prune a layer's LSB when its LSB density d_l <= α (the density is
                                     # the mean over the logged steps since the last check, not one step)
    min_bits: int = 2                # never prune a searched layer below this width (sign included)
    target_avg_bits: Optional[float] = None     # budget: end the search at this average width (or just under)
    target_compression: Optional[float] = None  # budget as a compression ratio X (= 32 / X average bits)
    landing_tolerance: float = 0.1   # how far under the budget (average bits) the last prune may land
    reach_fraction: float = 0.5      # the budget is reached after this fraction of the search's prune checks;
                                     # the rest of the search (λ = 0) and the finetune train the final widths
    lam_gain: float = 2.0            # with a budget, λ is multiplied by this after a check that had to force
                                     # prunes, divided by its square root otherwise, and set to 0 once landed

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
    enabled: bool = True     # Hessian-aware pruning: layers clearly below mean sensitivity drop 2 LSBs at once
    probes: int = 4          # Rademacher probes per batch
    batches: int = 16        # most batches per estimate (with target_rse it stops earlier once precise)
    batch_size: int = 64          # samples per Hessian batch (cost ~ probes x batch_size)
    target_rse: Optional[float] = 0.1  # stop adding batches once every searched layer's relative standard
                                       # error se/|Tr| is at most this (None: always use `batches` batches)
    z: float = 1.96          # interval half-width in standard errors (1.96: 95%); k = 2 needs Tr/N + z·se < mean

    def __post_init__(self) -> None:
        s = "hessian"
        check_field_types(self, s)
        _int_in(s, "probes", self.probes, 1, 1000)
        _int_in(s, "batches", self.batches, 1, 1000)
        _int_in(s, "batch_size", self.batch_size, 1, 65536)
        if self.target_rse is not None:
            _float_in(s, "target_rse", self.target_rse, 0.0, 10.0, lo_open=True)
        _float_in(s, "z", self.z, 0.0, 10.0)


@dataclass
class TrainConfig:
    """Phases, optimizer and logging. Epoch counts are per phase."""
    pretrain_epochs: int = 10    # float training (skipped when a checkpoint is given and this is 0)
    search_epochs: int = 20      # λ on, pruning on
    finetune_epochs: int = 6     # λ off, bits frozen
    batch_size: int = 64
    optimizer: str = "sgd"
    lr: float = 0.05             # peak learning rate of pretraining (cosine decay inside the phase)
    search_lr: Optional[float] = 0.005   # constant during the search: small, so weights settle on the
                                         # coarser grid the LSB penalty pulls them to (None = lr)
    finetune_lr: Optional[float] = None  # learning rate of the finetune phase (None = lr / 4)
    momentum: float = 0.9
    weight_decay: float = 0.0
    seed: int = 0
    device: str = "cpu"
    nproc: int = 1               # processes of one data-parallel run (torchrun; one GPU each on CUDA)
    log_every: int = 10          # steps between per-layer metric logs
    threads: int = 0             # torch CPU threads (0 = leave torch's default)

    def __post_init__(self) -> None:
        s = "train"
        check_field_types(self, s)
        for name in ("pretrain_epochs", "search_epochs", "finetune_epochs"):
            _int_in(s, name, getattr(self, name), 0, 100000)
        _check(self.total_epochs >= 1, s, "search_epochs", self.search_epochs, "at least one epoch in total "
               f"(pretrain {self.pretrain_epochs}, search {self.search_epochs}, finetune {self.finetune_epochs})",
               "Give a phase an epoch, e.g. --epochs 2,4,2.")
        _int_in(s, "batch_size", self.batch_size, 1, 65536)
        _choice(s, "optimizer", self.optimizer, OPTIMIZERS)
        _float_in(s, "lr", self.lr, 0.0, 10.0, lo_open=True)
        for name in ("search_lr", "finetune_lr"):
            if getattr(self, name) is not None:
                _float_in(s, name, getattr(self, name), 0.0, 10.0, lo_open=True)
        _float_in(s, "momentum", self.momentum, 0.0, 1.0)
        _float_in(s, "weight_decay", self.weight_decay, 0.0, 1.0)
        _int_in(s, "seed", self.seed, 0, 2**31 - 1)
        ok = isinstance(self.device, str) and (
            self.device in ("cpu", "cuda", "mps") or
            (self.device.startswith("cuda:") and self.device[5:].isdigit()))
        _check(ok, s, "device", self.device, "'cpu', 'cuda' or 'cuda:N'")
        _int_in(s, "nproc", self.nproc, 1, 1024)
        _check(self.nproc == 1 or not self.device.startswith("cuda:"), s, "device", self.device,
               "'cuda' or 'cpu' when train.nproc > 1", "Each process takes its own GPU; pick GPUs with "
               "CUDA_VISIBLE_DEVICES instead of cuda:N.")
        _int_in(s, "log_every", self.log_every, 1)
        _int_in(s, "threads", self.threads, 0, 1024)

    @property
    def total_epochs(self) -> int:
        return self.pretrain_epochs + self.search_epochs + self.finetune_epochs


@dataclass
class DataConfig:
    """Dataset and split. All bundled datasets work offline."""
    name: str = "mnist5k"        # mnist5k, digits, synthetic, cifar10, mnist, fashion-mnist, imagefolder:PATH
    root: str = "./data"         # local folder for torchvision datasets
    download: bool = False       # only when the user asks; nothing downloads by default
    val_fraction: float = 0.2
    split_seed: int = 0          # the train/val split is fixed by this seed, not by train.seed
    augment: bool = False        # random crops/flips for the 32x32 datasets
    limit: Optional[int] = None  # use at most this many training samples (quick experiments)

    def __post_init__(self) -> None:
        s = "data"
        check_field_types(self, s)
        _check(isinstance(self.name, str) and self.name != "", s, "name", self.name,
               "a dataset name such as 'mnist5k' (see `python -m msq datasets`)")
        _float_in(s, "val_fraction", self.val_fraction, 0.0, 0.9, lo_open=True)
        _int_in(s, "split_seed", self.split_seed, 0, 2**31 - 1)
        if self.limit is not None:
            _int_in(s, "limit", self.limit, 1)


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


_SECTIONS = {
    "quant": QuantConfig, "reg": RegConfig, "prune": PruneConfig, "hessian": HessianConfig,
    "train": TrainConfig, "data": DataConfig, "multibit": MultiBitConfig, "bsq": BSQConfig,
}


@dataclass
class RunConfig:
    """Everything one run needs. ``method`` picks the algorithm; sections it does not use are ignored."""
    method: str = "msq"
    model: str = "lenet5"            # registry name, tv:NAME, or path/to/file.py:factory
    model_kwargs: dict = field(default_factory=dict)
    checkpoint: Optional[str] = None  # optional float state_dict for the model
    name: str = ""                   # a human label; the run id is generated
    uniform_bits: int = 4            # width of every searched layer for method "uniform" (sign included)
    quant: QuantConfig = field(default_factory=QuantConfig)
    reg: RegConfig = field(default_factory=RegConfig)
    prune: PruneConfig = field(default_factory=PruneConfig)
    hessian: HessianConfig = field(default_factory=HessianConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    data: DataConfig = field(default_factory=DataConfig)
    multibit: MultiBitConfig = field(default_factory=MultiBitConfig)
    bsq: BSQConfig = field(default_factory=BSQConfig)

    def __post_init__(self) -> None:
        check_field_types(self, "run")
        _choice("run", "method", self.method, METHODS)
        _check(isinstance(self.model, str) and self.model != "", "run", "model", self.model,
               "a model name (see `python -m msq models`), tv:NAME, or path/to/file.py:factory")
        shaped = sorted(set(self.model_kwargs) & set(DATASET_SHAPE_ARGS))
        _check(not shaped, "run", "model_kwargs", self.model_kwargs, "options of the model's factory other "
               f"than {', '.join(DATASET_SHAPE_ARGS)}", f"Drop {', '.join(shaped)}: they come from the dataset.")
        _check(len(self.name) <= 200, "run", "name", self.name,
               "a string of at most 200 characters")
        _int_in("run", "uniform_bits", self.uniform_bits, 1, 16)
        for key, cls in _SECTIONS.items():
            value = getattr(self, key)
            if not isinstance(value, cls):
                setattr(self, key, _section_from_dict(cls, key, value))

    # -- JSON ---------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_json(self, indent: Optional[int] = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, sort_keys=False)

    @classmethod
    def from_dict(cls, data: dict) -> "RunConfig":
        if not isinstance(data, dict):
            raise ConfigError(f"a run config must be a JSON object, got {type(data).__name__}")
        return _section_from_dict(cls, "run", data)

    @classmethod
    def from_json(cls, text: str) -> "RunConfig":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"the run config is not valid JSON: {exc}") from None
        return cls.from_dict(data)

    def replace(self, **changes: Any) -> "RunConfig":
        """A copy with dotted-key changes, e.g. ``cfg.replace(**{"reg.lam": 2.0})``."""
        data = self.to_dict()
        for key, value in changes.items():
            set_dotted(data, key, value)
        return RunConfig.from_dict(data)


def _section_from_dict(cls: type, section: str, data: dict) -> Any:
    if not isinstance(data, dict):
        raise ConfigError(f"{section} must be a JSON object, got {data!r}")
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(f"{section} has unknown field(s) {', '.join(unknown)}: "
                          f"allowed fields are {', '.join(sorted(known))}")
    try:
        return cls(**data)
    except TypeError as exc:
        raise ConfigError(f"{section}: {exc}") from None


def set_dotted(data: dict, key: str, value: Any) -> None:
    """Set ``data["reg"]["lam"]`` from the key ``"reg.lam"``; errors name the unknown key."""
    parts = key.split(".")
    node = data
    for part in parts[:-1]:
        if not isinstance(node.get(part), dict):
            raise ConfigError(f"unknown config key {key!r}: {part!r} is not a section")
        node = node[part]
    if parts[-1] not in node:
        raise ConfigError(f"unknown config key {key!r}: allowed keys here are {', '.join(sorted(node))}")
    node[parts[-1]] = value


def get_dotted(data: dict, key: str) -> Any:
    node: Any = data
    for part in key.split("."):
        node = node[part]
    return node
