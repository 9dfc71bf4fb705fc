"""A sweep with Ray Tune: every trial is an ordinary msq run in the shared run store.

    from msq.sweeps.ray_tune import ray_sweep
    results = ray_sweep("/shared/runs", RunConfig().to_dict(), {"reg.lam": [8, 16, 32, 64]})

Ray schedules the trials over its cluster (``address="auto"`` joins a running one; None starts a local
instance); each trial trains in a Ray worker process with the store callback, so the dashboard pointed
at the same ``home`` shows every trial live, and ``python -m msq report`` works on each. The store and
run folders must be on storage every node sees. Ray is optional: nothing else in msq imports it.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

from msq.config import RunConfig
from msq.errors import ConfigError
from msq.sweeps.grid import grid_combinations

RESULT_KEYS = ("final_acc", "float_acc", "average_bits", "compression", "status")


def _trial(trial_config: dict) -> dict:
    """One Ray Tune trial: train the run in this (Ray worker) process, recorded in the shared store."""
    from msq.runs import RunStore
    from msq.runs.ids import new_run_id
    from msq.training.foreground import train_recorded

    cfg = RunConfig.from_dict(trial_config["base"]).replace(**trial_config["changes"])
    store = RunStore(trial_config["home"])
    run_id = new_run_id()
    summary = train_recorded(cfg, store, run_id)
    return {"run_id": run_id, **{key: summary.get(key) for key in RESULT_KEYS}}


def ray_sweep(home: str | Path, base_config: dict, grid: dict[str, list], address: Optional[str] = None,
              cpus_per_trial: float = 1.0, gpus_per_trial: float = 0.0, max_concurrent: int = 0,
              num_cpus: Optional[int] = None) -> list[dict]:
    """Run every combination of ``grid`` (dotted config keys -> values) as a Ray Tune trial.

    Returns one dict per trial: the changed keys, the msq run id and its final metrics.
    """
    try:
        import ray
        from ray import tune
    except ImportError:
        raise ConfigError('the Ray sweep needs Ray Tune: pip install "ray[tune]" (or run the sweep on this '
                          "machine's queue with `python -m msq sweep` without --ray)") from None
    base = RunConfig.from_dict(base_config)
    for changes in grid_combinations(grid):      # a bad value fails here, before Ray starts
        base.replace(**changes)
    home = str(Path(home).resolve())
    if not ray.is_initialized():
        # Ray's workers import msq from where this copy lives (it need not be pip-installed)
        root = str(Path(__file__).resolve().parents[2])
        ray.init(address=address, num_cpus=num_cpus, include_dashboard=False, log_to_driver=False,
                 runtime_env={"env_vars": {"PYTHONPATH": root}})
    trainable = tune.with_resources(_trial, {"cpu": cpus_per_trial, "gpu": gpus_per_trial})
    space = {"home": home, "base": base.to_dict(),
             "changes": tune.grid_search(list(grid_combinations(grid)))}
    tuner = tune.Tuner(trainable, param_space=space,
                       tune_config=tune.TuneConfig(max_concurrent_trials=max_concurrent),
                       run_config=tune.RunConfig(storage_path=str(Path(home) / "ray_results"), name="msq-sweep",
                                                 verbose=0))
    results = tuner.fit()
    rows = []
    for result in results:
        if result.error:
            rows.append({**result.config["changes"], "status": "failed", "error": str(result.error)})
        else:
            rows.append({**result.config["changes"], **{k: result.metrics.get(k) for k in ("run_id", *RESULT_KEYS)}})
    return rows

