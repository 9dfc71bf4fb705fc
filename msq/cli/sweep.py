"""``python -m msq sweep``: many runs over a grid of config values.

On this machine the runs are queued in the run store and start as their device frees up (one per GPU,
or ``MSQ_MAX_CPU_RUNS`` on the CPU). With ``--ray`` they are Ray Tune trials instead (a local Ray
instance, or a cluster with ``--ray-address auto``), each still an ordinary run in the store.
"""
from __future__ import annotations

import dataclasses
import json
import sys

from msq.cli.train import add_config_flags, config_from_args, default_home
from msq.errors import ConfigError


def register(subparsers) -> None:
    p = subparsers.add_parser("sweep", help="queue one run per combination of config values (or run them on Ray)",
                              description=__doc__)
    add_config_flags(p)
    p.add_argument("--grid", action="append", required=True, metavar="KEY=V1,V2,...",
                   help="a dotted config key and its values, e.g. --grid reg.lam=8,16,32 (repeat for a product)")
    p.add_argument("--ray", action="store_true", help="run the trials with Ray Tune (pip install 'ray[tune]')")
    p.add_argument("--ray-address", default=None, help="an existing Ray cluster ('auto'); default: start one here")
    p.add_argument("--cpus-per-trial", type=float, default=1.0)
    p.add_argument("--gpus-per-trial", type=float, default=0.0)
    p.set_defaults(handler=run)


def parse_grid(items: list[str]) -> dict[str, list]:
    grid = {}
    for item in items:
        key, sep, raw = item.partition("=")
        values = [v for v in raw.split(",") if v.strip()]
        if not sep or not values:
            raise ConfigError(f"--grid {item!r} is invalid: allowed KEY=V1,V2,... e.g. --grid reg.lam=8,16,32")
        grid[key.strip()] = [_value(v.strip()) for v in values]
    return grid


def _value(text: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def check_models(configs: list) -> None:
    """Build each distinct model/dataset pair once and run it on a batch of the dataset's shape (see
    msq.training.preflight), so a bad model or dataset name fails the sweep before a run is queued."""
    from msq.training.preflight import preflight

    seen, warned = set(), set()
    for cfg in configs:
        key = json.dumps([cfg.model, cfg.model_kwargs, cfg.checkpoint, cfg.data.name, dataclasses.asdict(cfg.quant)],
                         sort_keys=True)
        if key in seen:
            continue
        seen.add(key)
        for message in preflight(cfg):
            if message not in warned:
                warned.add(message)
                print(f"warning: {message}", file=sys.stderr)


def run(args) -> int:
    home = args.home or default_home()
    base = config_from_args(args)
    grid = parse_grid(args.grid)
    from msq.sweeps.grid import grid_combinations
    changes = grid_combinations(grid)
    configs = [base.replace(**c) for c in changes]     # every value is checked before anything is queued
    check_models(configs)
    if args.ray:
        from msq.sweeps.ray_tune import ray_sweep
        rows = ray_sweep(home, base.to_dict(), grid, address=args.ray_address, cpus_per_trial=args.cpus_per_trial,
                         gpus_per_trial=args.gpus_per_trial)
        for row in rows:
            print(json.dumps(row))
        return 0 if all(r.get("status") == "completed" for r in rows) else 1
    from msq.runs import runner
    for change, cfg in zip(changes, configs):
        label = " ".join(f"{k}={v}" for k, v in change.items())
        run_id = runner.launch(home, cfg.to_dict(), name=cfg.name or label)
        print(f"{run_id}  {label}")
    return 0
