"""Run configuration: plain dataclasses, validated, JSON round-trip. No torch import.

Every field that changes what the engine computes lives here, so a run is fully described by its
``config.json``. The dashboard builds its launch form from these classes; the CLI maps flags onto them.
Errors name the field, the value that came, what is allowed and how to fix it.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any, Optional

from msq.config_checks import check as _check, choice as _choice, float_in as _float_in, int_in as _int_in
from msq.config_types import check_field_types
from msq.errors import ConfigError
# the methods' own sections (each lives with its method in msq/methods/<name>/config.py)
from msq.methods.bsq.config import BSQConfig
from msq.methods.msq.config import HessianConfig, PruneConfig, RegConfig
from msq.methods.multibit.config import MultiBitConfig
from msq.methods.registry import list_methods

OPTIMIZERS = ("sgd", "adam")
WEIGHT_GRIDS = ("affine", "symmetric")   # msq.functional.quantize.GRIDS (kept torch-free here)
DATASET_SHAPE_ARGS = ("num_classes", "in_channels", "image_size")   # every model factory gets them from the data


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
        _choice("run", "method", self.method, tuple(list_methods()))
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
