"""``StoreCallback``: the training loop's view of the run store. It writes what the dashboard draws
(config, layers, scalars per step and per epoch, per-layer vectors, events, heartbeat, the end) and
reads what the dashboard asks (stop, live λ) from the controls table.

The hot path (``on_step_end``) only buffers rows; ``RunWriter`` commits them at most once a second,
and at every phase start, epoch end and the run's end. Controls are polled at most every
``poll_every`` seconds and only between steps, so a request takes effect at the next step.
"""
from __future__ import annotations

import os
import sqlite3
import sys
import time
from typing import Optional

from msq.errors import ConfigError
from msq.runs import RunStore, RunWriter, validate_run_id
from msq.runs.procs import mark_running
from msq.training.callbacks import Callback

STEP_KEYS = ("loss", "task_loss", "reg", "lam", "lr")
LAYER_FIELDS = ("fqn", "kind", "shape", "params", "macs", "bits", "fixed", "fixed_reason")


def layer_row(layer, position: int) -> dict:
    """A LayerInfo (attributes) or a dict with the same keys -> the store's layer row."""
    get = layer.get if isinstance(layer, dict) else (lambda key, default=None: getattr(layer, key, default))
    row = {key: get(key) for key in LAYER_FIELDS}
    row["idx"] = get("index", position)
    row["shape"] = list(row["shape"]) if row["shape"] is not None else None
    return row


class StoreCallback(Callback):
    def __init__(self, store: RunStore | str | os.PathLike, run_id: str, poll_every: float = 0.2,
                 flush_every: float = 1.0, heartbeat_every: float = 2.0) -> None:
        self.run_id = validate_run_id(run_id)
        self.store = store if isinstance(store, RunStore) else RunStore(store)
        self.poll_every, self.flush_every, self.heartbeat_every = poll_every, flush_every, heartbeat_every
        self.writer: Optional[RunWriter] = None
        self._last_poll = -float("inf")

    def on_run_start(self, trainer) -> None:
        cfg = trainer.cfg
        if not self.store.conn.execute("SELECT 1 FROM runs WHERE id = ?", (self.run_id,)).fetchone():
            # a foreground run (not launched by the runner) registers itself
            self.store.create_run(cfg.to_dict(), name=cfg.name, device=str(cfg.train.device), status="running",
                                  run_id=self.run_id)
        # the runner's GPU assignment (e.g. "cuda:2"), which this process sees as cuda:0
        device = os.environ.get("MSQ_RUN_DEVICE") or str(getattr(trainer, "device", cfg.train.device))
        mark_running(self.store, self.run_id, device=device)
        self.writer = RunWriter(self.store, self.run_id, self.flush_every, self.heartbeat_every)
        state = trainer.state   # on resume: drop what the last attempt stored after its checkpoint
        self.writer.truncate_after(state.step, keep_events=len(state.events))
        if getattr(trainer, "resumed", False):
            self.writer.add_event(state.step, state.epoch, "resume", {"checkpoint_step": state.step})
        self.store.set_layers(self.run_id, [layer_row(layer, i) for i, layer in enumerate(trainer.layers)])
        self.writer.flush()

    def on_phase_start(self, trainer, phase: str) -> None:
        self.writer.flush()

    def on_step_end(self, trainer, scalars: dict) -> None:
        self.writer.add_scalars(trainer.state.step, trainer.state.epoch, scalars)
        self._poll(trainer)
        if self.writer.due():
            self.writer.flush()

    def on_log(self, trainer, layer_metrics: dict) -> None:
        self.writer.add_vectors(trainer.state.step, trainer.state.epoch, layer_metrics)

    def on_epoch_end(self, trainer, scalars: dict) -> None:
        # keys the steps also log (lam, loss) go under "epoch_<key>" so the step series keeps one row per step
        step_keys = {k: v for k, v in scalars.items() if k in STEP_KEYS}
        epoch_only = {k: v for k, v in scalars.items() if k not in STEP_KEYS}
        self.writer.add_scalars(trainer.state.step, trainer.state.epoch, epoch_only)
        self.writer.add_scalars(trainer.state.step, trainer.state.epoch, step_keys, prefix="epoch_")
        self.writer.flush()
        self._poll(trainer, force=True)

    def on_event(self, trainer, kind: str, payload: dict) -> None:
        self.writer.add_event(trainer.state.step, trainer.state.epoch, kind, payload)
        if kind == "prune" and "fqn" in payload and "new_bits" in payload:
            self.writer.set_layer_bits(payload["fqn"], payload["new_bits"])

    def on_run_end(self, trainer, status: str, summary: dict, error: Optional[str]) -> None:
        if self.writer is None:   # the run failed before it started: record that much
            self.store.update_run(self.run_id, status=status, ended=time.time(), error=error)
            return
        self.writer.finish(status, summary, error)

    def _poll(self, trainer, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_poll < self.poll_every:
            return
        self._last_poll = now
        try:
            controls = self.store.take_controls(self.run_id, step=trainer.state.step)
        except sqlite3.Error as exc:   # busy past the timeout: ask again at the next poll, keep training
            print(f"warning: could not read controls ({exc}); retrying", file=sys.stderr)
            return
        for key, value in controls:
            if key == "stop":
                trainer.request_stop(str(value or "stop requested"))
            elif key == "lam":
                try:
                    trainer.set_lam(float(value), source="control")   # the trainer logs a "lam_change" event
                except (ConfigError, TypeError, ValueError) as exc:
                    print(f"warning: ignored the λ change to {value!r}: {exc}", file=sys.stderr)
            else:
                print(f"warning: ignored unknown control {key!r} (known: stop, lam)", file=sys.stderr)
