"""Training in the caller's process (CLI ``train`` and ``msq.train``): a run id, a run folder, progress."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

from msq.config import RunConfig
from msq.runs import RunStore
from msq.runs.ids import new_run_id
from msq.training.callbacks import Callback
from msq.training.console import ConsoleProgress
from msq.training.ddp_launch import supervise
from msq.training.preflight import preflight
from msq.training.run_folder import RunFolderCallback
from msq.training.store_callback import StoreCallback
from msq.training.trainer import Trainer


def train_in_foreground(cfg: RunConfig, home: str, progress: bool = True, quiet: bool = False,
                        callbacks: Optional[list[Callback]] = None) -> dict:
    """Print the run id first, train with a progress display, print the result table, return the summary.

    The run is recorded in the run store at ``home`` like a launched one, so the dashboard shows it live.
    """
    store = RunStore(home)
    run_id = new_run_id()
    run_dir = store.run_dir(run_id)
    if cfg.train.nproc > 1:
        for message in preflight(cfg):     # a bad model or dataset fails here, before a run id exists
            print(f"warning: {message}", file=sys.stderr)
        print(run_id, flush=True)
        return _train_with_torchrun(cfg, store, run_id, quiet)
    extra = list(callbacks or [])
    if not quiet:
        extra.append(ConsoleProgress(bar=progress))
    trainer = recorded_trainer(cfg, store, run_id, extra)   # a bad model or dataset fails here, before the id
    print(run_id, flush=True)
    for message in trainer.warnings:
        print(f"warning: {message}", file=sys.stderr)
    summary = trainer.fit()
    if not quiet:
        print(format_result(summary, run_dir))
    if summary["error"]:
        print(f"error: {summary['error']}", file=sys.stderr)
    return summary


def recorded_trainer(cfg: RunConfig, store: RunStore, run_id: str,
                     callbacks: Optional[list[Callback]] = None) -> Trainer:
    """A Trainer that records as run ``run_id`` of ``store`` (rows, run folder, checkpoints) once it fits;
    building it loads the model and data, so bad input fails here with nothing recorded yet."""
    run_dir = store.run_dir(run_id)
    listeners = [StoreCallback(store, run_id), RunFolderCallback(run_dir), *(callbacks or [])]
    return Trainer(cfg, callbacks=listeners, run_dir=run_dir)


def train_recorded(cfg: RunConfig, store: RunStore, run_id: str, callbacks: Optional[list[Callback]] = None) -> dict:
    """Train in this process as run ``run_id`` of ``store`` (rows, run folder, checkpoints); the summary."""
    return recorded_trainer(cfg, store, run_id, callbacks).fit()


def format_result(summary: dict, run_dir: Path | None = None) -> str:
    lines = [f"{'layer':<28} {'kind':<9} {'params':>9} {'bits':>4}  {'LSB dens':>8}  {'sensitivity':>11}"]
    for layer in summary["layers"]:
        sens = "" if layer["sensitivity"] is None else f"{layer['sensitivity']:.3e}"
        pin = " (fixed)" if layer["fixed"] else ""
        lines.append(f"{layer['fqn']:<28} {layer['kind']:<9} {layer['params']:>9} {layer['bits']:>4}  "
                     f"{layer['lsb_density']:>8.3f}  {sens:>11}{pin}")
    float_acc = "n/a" if summary["float_acc"] is None else f"{summary['float_acc']:.2f}%"
    final_acc = "n/a" if summary["final_acc"] is None else f"{summary['final_acc']:.2f}%"
    lines.append(f"status {summary['status']}: float accuracy {float_acc}, final accuracy {final_acc}, "
                 f"average bits {summary['average_bits']:.2f}, compression {summary['compression']:.2f}x")
    budget = summary.get("budget")
    if budget:
        verdict = "landed" if budget["landed"] else "missed it"
        lines.append(f"budget {budget['target_avg_bits']:.2f} bits: ended at {budget['final_avg_bits']:.2f} "
                     f"({budget['gap_bits']:+.2f}; within {budget['tolerance_bits']:g} under it counts), {verdict}")
    if run_dir is not None:
        lines.append(f"results in {run_dir}/result.json")
    return "\n".join(lines)


def _train_with_torchrun(cfg: RunConfig, store: RunStore, run_id: str, quiet: bool) -> dict:
    """Several processes (DDP): this process supervises torchrun; rank 0 writes the store and the folder."""
    store.create_run(cfg.to_dict(), name=cfg.name, device=cfg.train.device, status="running", run_id=run_id)
    supervise(store, run_id, cfg.train.nproc, progress=not quiet)
    row = store.run(run_id)
    summary = row.get("summary") or {}
    if summary.get("layers") and not quiet:
        print(format_result(summary, store.run_dir(run_id)))
    if row["status"] not in ("completed", "stopped"):
        print(f"error: {row.get('error') or 'the run did not complete'}", file=sys.stderr)
    return {**summary, "status": row["status"], "error": row.get("error")}
