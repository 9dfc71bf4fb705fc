"""Run configuration: plain dataclasses, validated, JSON round-trip. No torch import.

Every field that changes what the engine computes lives here, so a run is fully described by its
``config.json``. The dashboard builds its launch form from these classes; the CLI maps flags onto them.
Each field carries its help text (``msq.config_help.described``), read by ``field_help("reg.lam")``: the
CLI's ``--help`` and the launch form show that one text.
Errors name the field, the value that came, what is allowed and how to fix it.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any, Optional

from msq.config_checks import check as _check, choice as _choice, float_in as _float_in, int_in as _int_in
from msq.config_help import described, help_of
from msq.config_types import check_field_types
from msq.errors import ConfigError
# the methods' own sections (each lives with its method in msq/methods/<name>/config.py)
from msq.methods.bsq.config import BSQConfig
from msq.methods.msq.config import HessianConfig, PruneConfig, RegConfig
from msq.methods.multibit.config import MultiBitConfig
from msq.methods import DEFAULT_METHOD
from msq.methods.registry import list_methods

OPTIMIZERS = ("sgd", "adam")
WEIGHT_GRIDS = ("affine", "symmetric")   # msq.functional.quantize.GRIDS (kept torch-free here)
DATASET_SHAPE_ARGS = ("num_classes", "in_channels", "image_size")   # every model factory gets them from the data


@dataclass
class QuantConfig:
    """Which layers are quantized and at what precision they start."""
    init_bits: int = described(8, "Every searched layer starts at this width (2..8); MSQ prunes down from it.")
    keep_first_last: bool = described(True, "The input and output layers are usually the most sensitive: by default "
                                      "they stay at fixed bits (quant.fixed_bits, 8) and are not searched.")
    fixed_bits: int = described(8, "Width of the layers kept fixed (first/last, or matched by quant.fixed), 2..16.")
    exclude: list = described(factory=list, help="fnmatch patterns of module names left in float, e.g. "
                                                 "['fc3', 'layer1.*'].")
    fixed: list = described(factory=list, help="fnmatch patterns of module names kept at quant.fixed_bits "
                                               "(not searched).")
    act_bits: Optional[int] = described(None, "Quantize the inputs of quantized layers to this many bits, 2..8 "
                                        "(PACT clip); float (null) = off.")
    act_clip_init: float = described(6.0, "Initial PACT clip value α of the activations.")
    grid: str = described("symmetric", "affine: 2^n levels from −s (1 bit = {−s, 0}); symmetric: sign-magnitude "
                          "levels around 0 (2 bits = ternary, 1 bit = binary). Both nest, so dropping zero LSBs "
                          "changes no value. Equal accuracy at 2-4 bits; at 1 bit symmetric is far better "
                          "(uniform 1-bit 86.6% vs 35.1% on Fashion-MNIST, bench/pareto.py).")

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
    pretrain_epochs: int = described(10, "Float training before quantization (0 with a checkpoint: then it is "
                                     "skipped).")
    search_epochs: int = described(20, "Search phase: λ on, LSB pruning on.")
    finetune_epochs: int = described(6, "λ off, bits frozen: recover accuracy at the final widths.")
    batch_size: int = described(64, "Training samples per step.")
    optimizer: str = described("sgd", f"The optimizer: {' or '.join(OPTIMIZERS)}.")
    lr: float = described(0.05, "Peak learning rate of pretraining (cosine decay inside the phase); the search and "
                          "finetune rates default from it.")
    search_lr: Optional[float] = described(
        0.005, "Learning rate of the search, constant: small, so weights settle on the coarser grid the LSB penalty "
               "pulls them to (null = train.lr).")
    finetune_lr: Optional[float] = described(None, "Learning rate of the finetune phase (null = train.lr / 4).")
    momentum: float = described(0.9, "Momentum of sgd (Nesterov when > 0).")
    weight_decay: float = described(0.0, "Weight decay of the optimizer.")
    seed: int = described(0, "Seeds weights and data order; the train/val split has its own seed.")
    device: str = described("cpu", "cpu; cuda = any free GPU (the runner picks the least busy ones, one per "
                            "process); or cuda:N = that one GPU.")
    nproc: int = described(1, "Processes of one data-parallel run (torchrun): on CPU they share the cores over "
                           "gloo; on CUDA each takes its own GPU, assigned by the runner.")
    log_every: int = described(10, "Steps between per-layer metric logs.")
    threads: int = described(0, "torch CPU threads (0 = leave torch's default).")

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
    name: str = described("mnist5k", "Dataset: mnist5k, digits, synthetic, cifar10, mnist, fashion-mnist (see "
                          "`python -m msq datasets`), or imagefolder:PATH (one sub-folder of images per class).")
    root: str = described("./data", "Local folder of the torchvision datasets.")
    download: bool = described(False, "Let torchvision download the dataset into data.root. Nothing downloads "
                               "unless you ask; the network may be off.")
    val_fraction: float = described(0.2, "Fraction of the training data held out for validation.")
    split_seed: int = described(0, "Seed of the train/val split (fixed by this seed, not by train.seed).")
    augment: bool = described(False, "Random crops and flips for the 32x32 datasets.")
    limit: Optional[int] = described(None, "Use at most this many training samples (quick experiments); null = "
                                     "all.")

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
class RunConfig:
    """Everything one run needs. ``method`` picks the algorithm; sections it does not use are ignored."""
    method: str = described(DEFAULT_METHOD, "The training method; the config's sections it does not use are ignored.")
    model: str = described("lenet5", "A sample model (see `python -m msq models`), a torchvision model as tv:NAME, "
                           "or your own: a Python file and a function in it that returns a torch.nn.Module, as "
                           "path/to/file.py:factory.")
    model_kwargs: dict = described(factory=dict, help="Keyword arguments of the model's factory (not "
                                   f"{', '.join(DATASET_SHAPE_ARGS)}: they come from the dataset).")
    checkpoint: Optional[str] = described(None, "A float state_dict to start from (optional).")
    name: str = described("", "A label for the run (optional, at most 200 characters); the run id is generated.")
    uniform_bits: int = described(4, "Uniform QAT reference point (method uniform): every searched layer trains at "
                                  "this width, sign included.")
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


# every section of a RunConfig, by key: the fields whose default is a section dataclass (the core ones above,
# and each method's own, which lives with it in msq/methods/<name>/config.py)
_SECTIONS = {f.name: f.default_factory for f in dataclasses.fields(RunConfig)
             if dataclasses.is_dataclass(f.default_factory)}


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


def config_keys() -> list[str]:
    """Every field's dotted key: a section's as "reg.lam", a run-level one bare ("uniform_bits")."""
    keys = []
    for f in dataclasses.fields(RunConfig):
        section = _SECTIONS.get(f.name)
        keys += [f"{f.name}.{g.name}" for g in dataclasses.fields(section)] if section else [f.name]
    return keys


def field_help(key: str) -> str:
    """The help text of the field at dotted ``key`` ("reg.lam", "uniform_bits"); "" when it has none.

    >>> field_help("prune.every")
    'Search epochs between prune checks.'
    """
    section, _, name = key.rpartition(".")
    try:
        return help_of(_SECTIONS[section] if section else RunConfig, name)
    except KeyError:
        raise ConfigError(f"unknown config key {key!r}: see msq.config.config_keys()") from None


def all_field_help() -> dict[str, str]:
    """Dotted key -> help text of every field that has one."""
    return {key: text for key in config_keys() if (text := field_help(key))}


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
