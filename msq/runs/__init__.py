"""The run store (SQLite, WAL) and the background runner. Standard library only, so the dashboard can
read runs without loading the training stack.

    from msq.runs import RunStore, launch
    run_id = launch("runs", {"model": "lenet5", "data": {"name": "mnist5k"}})
    RunStore("runs").scalar_series(run_id, "loss", max_points=500)
"""
from msq.runs.ids import new_run_id, validate_run_id
from msq.runs.reads import LayerMatrix
from msq.runs.runner import launch, reap, resume, schedule, set_lam, stop
from msq.runs.store import FINAL_STATUSES, STATUSES, RunStore, resolve_home
from msq.runs.writer import RunWriter

__all__ = ["FINAL_STATUSES", "LayerMatrix", "RunStore", "RunWriter", "STATUSES", "launch", "new_run_id", "reap",
           "resolve_home", "resume", "schedule", "set_lam", "stop", "validate_run_id"]
