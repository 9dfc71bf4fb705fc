"""``python -m msq train``: build a RunConfig from ``--config`` and flags, then train in the foreground.

With ``--run-id ID`` it is the background worker the runner starts: the config comes from the store.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from msq.config import OPTIMIZERS, WEIGHT_GRIDS, RunConfig, field_help, get_dotted, set_dotted
from msq.errors import ConfigError
from msq.methods import list_methods
from msq.methods.msq.config import REG_NORMS

# flag -> dotted config key (None: handled by hand)
FLAG_KEYS = {
    "model": "model", "dataset": "data.name", "method": "method", "lam": "reg.lam", "init_bits": "quant.init_bits",
    "bits": "uniform_bits", "device": "train.device", "seed": "train.seed", "batch_size": "train.batch_size",
    "lr": "train.lr", "optimizer": "train.optimizer", "threshold": "prune.threshold", "prune_every": "prune.every",
    "min_bits": "prune.min_bits", "target_bits": "prune.target_avg_bits", "probes": "hessian.probes",
    "target_compression": "prune.target_compression", "weight_grid": "quant.grid",
    "act_bits": "quant.act_bits", "norm": "reg.norm", "name": "name", "checkpoint": "checkpoint",
    "data_root": "data.root", "threads": "train.threads", "nproc": "train.nproc",
}
DEFAULTS = RunConfig().to_dict()


def default_home() -> str:
    return os.environ.get("MSQ_HOME", "./runs")


def register(subparsers) -> None:
    p = subparsers.add_parser("train", help="train a model (MSQ, uniform QAT, BSQ or multi-bit)",
                              description="Train and search per-layer bit-widths. Flags override --config.")
    add_config_flags(p)
    p.add_argument("--run-id", help=argparse.SUPPRESS)  # the background worker's entry point
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(handler=run)


def add_config_flags(p) -> None:
    """The flags that build a RunConfig (shared by ``train`` and ``sweep``), and --home. A flag that sets a
    config field (``FLAG_KEYS``) shows that field's own help text (``msq.config.field_help``)."""
    methods = list_methods()
    p.add_argument("--config", help="a run.json (RunConfig as JSON); flags override its values")
    config_flag(p, "model")
    config_flag(p, "dataset")
    config_flag(p, "method", choices=methods, metavar="METHOD", more="Registered: " + ", ".join(methods) + ".")
    config_flag(p, "lam", type=float)
    config_flag(p, "init_bits", type=int)
    config_flag(p, "bits", type=int)
    p.add_argument("--epochs", help="epochs as PRETRAIN,SEARCH,FINETUNE (e.g. 8,24,8), or one total split 1:3:1")
    config_flag(p, "device")
    config_flag(p, "seed", type=int)
    config_flag(p, "batch_size", type=int)
    config_flag(p, "lr", type=float)
    config_flag(p, "optimizer", choices=list(OPTIMIZERS))
    config_flag(p, "threshold", type=float)
    config_flag(p, "prune_every", type=int)
    config_flag(p, "min_bits", type=int)
    config_flag(p, "target_bits", type=float)
    config_flag(p, "target_compression", type=float)
    config_flag(p, "weight_grid", choices=list(WEIGHT_GRIDS))
    p.add_argument("--no-hessian", action="store_true", help="prune one LSB at a time everywhere")
    config_flag(p, "probes", type=int)
    config_flag(p, "act_bits", type=int)
    config_flag(p, "norm", choices=list(REG_NORMS))
    config_flag(p, "checkpoint")
    config_flag(p, "data_root")
    p.add_argument("--data-download", action="store_true", help="allow torchvision to download the dataset")
    config_flag(p, "threads", type=int)
    config_flag(p, "nproc", type=int)
    config_flag(p, "name")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="any config field by dotted key, value as JSON (e.g. --set prune.every=2)")
    p.add_argument("--home", default=None, help="run store folder (default $MSQ_HOME or ./runs)")


def config_flag(p, flag: str, more: str = "", **kwargs) -> None:
    """``--flag`` (dashes for underscores) for the config field ``FLAG_KEYS[flag]``, with that field's help."""
    p.add_argument("--" + flag.replace("_", "-"), help=flag_help(FLAG_KEYS[flag], more), **kwargs)


def flag_help(key: str, more: str = "") -> str:
    """The field's help text, then ``more`` and the field's default, escaped for argparse (which reads % itself)."""
    text = " ".join(t for t in (field_help(key), more) if t)
    default = get_dotted(DEFAULTS, key)
    if default not in (None, ""):
        text += f" (default {default})"
    return text.replace("%", "%%")


def config_from_args(args) -> RunConfig:
    data = RunConfig().to_dict()
    if args.config:
        path = Path(args.config)
        if not path.is_file():
            raise ConfigError(f"--config {args.config!r}: no such file")
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            reason = "is not UTF-8 text" if isinstance(exc, UnicodeDecodeError) else f"cannot be read ({exc.strerror})"
            raise ConfigError(f"--config {args.config!r} {reason}: give a run.json file (RunConfig as JSON)") from None
        data = RunConfig.from_json(text).to_dict()
    for flag, key in FLAG_KEYS.items():
        value = getattr(args, flag, None)
        if value is not None:
            set_dotted(data, key, value)
    if args.epochs is not None:
        data["train"].update(parse_epochs(args.epochs))
    if args.no_hessian:
        data["hessian"]["enabled"] = False
    if args.data_download:
        data["data"]["download"] = True
    for item in args.set:
        key, sep, raw = item.partition("=")
        if not sep:
            raise ConfigError(f"--set {item!r}: expected KEY=VALUE, e.g. --set prune.every=2")
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        set_dotted(data, key.strip(), value)
    return RunConfig.from_dict(data)


def parse_epochs(text: str) -> dict:
    parts = [p.strip() for p in str(text).split(",")]
    try:
        numbers = [int(p) for p in parts]
    except ValueError:
        numbers = []
    if len(numbers) == 3 and min(numbers) >= 0 and sum(numbers) >= 1:
        return dict(zip(("pretrain_epochs", "search_epochs", "finetune_epochs"), numbers))
    if len(numbers) == 1 and numbers[0] >= 1:
        total = numbers[0]
        pretrain, finetune = max(total // 5, 0), max(total // 5, 0)
        return {"pretrain_epochs": pretrain, "search_epochs": total - pretrain - finetune, "finetune_epochs": finetune}
    raise ConfigError(f"--epochs {text!r} is invalid: allowed PRETRAIN,SEARCH,FINETUNE (e.g. 8,24,8) "
                      "or one total number of epochs, with at least one epoch in all")


def run(args) -> int:
    home = args.home or default_home()
    if args.run_id:
        from msq.training.worker import run_worker
        return run_worker(home, args.run_id)
    cfg = config_from_args(args)
    from msq.training.distributed import env_world_size
    if env_world_size() > 1:      # started by the user's own torchrun (e.g. several nodes)
        from msq.training.ddp_launch import register_torchrun_run
        from msq.training.worker import run_worker
        return run_worker(home, register_torchrun_run(cfg, home))
    from msq.training.foreground import train_in_foreground
    summary = train_in_foreground(cfg, home, progress=not args.quiet and sys.stderr.isatty(), quiet=args.quiet)
    return 0 if summary["status"] in ("completed", "stopped") else 1
