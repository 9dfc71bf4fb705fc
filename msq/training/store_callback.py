"""``StoreCallback``: the training loop's view of the run store. It writes what the dashboard draws
(config, layers, scalars per step and per epoch, per-layer vectors, events, heartbeat, the end) and
reads what the dashboard asks (stop, live λ) from the controls table.

The hot path (``on_step_end``) only buffers rows; ``RunWriter`` commits them at most once a second,
and at every phase start, epoch end and the run's end. Controls are polled at most every
``poll_every`` seconds and only between steps, so a request takes effect at the next step.

On resume it first replays what the store lacks (rows an earlier attempt could only spill), drops
what the earlier attempt stored past the checkpoint, and re-applies the λ changes that attempt
applied after the checkpoint, each at the step it was applied: the controls live in the store, so a
λ set just before a stop survives the resume. Controls no worker took before the end are recorded as
not applied (``Attempt.end``), never left as if they were.
"""
from __future__ import annotations

import os
import sqlite3
import sys
import time
from typing import Optional

from msq.errors import ConfigError
from msq.runs import RunStore, RunWriter, validate_run_id
from msq.runs.controls import KINDS, LAM, STOP
from msq.runs.gates import wait_at
from msq.runs.ownership import Attempt, RunOwnershipLost
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
                 flush_every: float = 1.0, heartbeat_every: float = 2.0, attempt: Optional[int] = None) -> None:
        """``attempt``: the attempt of the run this process works for (default: $MSQ_RUN_ATTEMPT, else
        the run's current one)."""
        self.run_id = validate_run_id(run_id)
        self.store = store if isinstance(store, RunStore) else RunStore(store)
        self.poll_every, self.flush_every, self.heartbeat_every = poll_every, flush_every, heartbeat_every
        self.attempt_number = attempt
        self.attempt: Optional[Attempt] = None
        self.writer: Optional[RunWriter] = None
        self._last_poll = -float("inf")
        self._lam_replays: list[tuple[int, float]] = []   # (step, λ) applied by an earlier attempt after the checkpoint

    def on_run_start(self, trainer) -> None:
        cfg = trainer.cfg
        number = self.attempt_number
        if not self.store.has_run(self.run_id):
            # a foreground run (not launched by the runner) registers itself, and owns its first attempt
            self.store.create_run(cfg.to_dict(), name=cfg.name, device=str(cfg.train.device), status="running",
                                  run_id=self.run_id)
            number = self.store.run(self.run_id)["attempt"]
        self.attempt = Attempt.of(self.store, self.run_id, number)
        # the runner's GPU assignment (e.g. "cuda:2"), which this process sees as cuda:0
        device = os.environ.get("MSQ_RUN_DEVICE") or str(getattr(trainer, "device", cfg.train.device))
        if not self.attempt.mark_running(device):
            raise RunOwnershipLost(f"run {self.run_id} is not running as attempt {self.attempt.number} "
                                   f"(it is {self.store.run(self.run_id)['status']}, attempt "
                                   f"{self.store.run(self.run_id)['attempt']}): this process may not train it")
        self.writer = RunWriter(self.store, self.run_id, self.flush_every, self.heartbeat_every,
                                attempt=self.attempt.number)
        state = trainer.state   # on resume: what the store lacks, then drop what came after the checkpoint
        replayed = self.writer.replay_spills()
        if replayed:
            print(f"--- replayed {replayed} rows an earlier attempt could not write to the store", flush=True)
        self.writer.truncate_after(state.step, keep_events=len(state.events))
        self._lam_replays = [(c["step"], float(c["value"])) for c in self.store.controls(self.run_id)
                             if c["key"] == LAM and c["outcome"] == "applied" and (c["step"] or 0) > state.step]
        if getattr(trainer, "resumed", False):
            self.writer.add_event(state.step, state.epoch, "resume", {"checkpoint_step": state.step})
        self.store.set_layers(self.run_id, [layer_row(layer, i) for i, layer in enumerate(trainer.layers)])
        self.writer.flush()

    def on_phase_start(self, trainer, phase: str) -> None:
        self.writer.flush()

    def on_step_end(self, trainer, scalars: dict) -> None:
        self.writer.add_scalars(trainer.state.step, trainer.state.epoch, scalars)
        while self._lam_replays and self._lam_replays[0][0] <= trainer.state.step:
            trainer.set_lam(self._lam_replays.pop(0)[1], source="control")   # as the earlier attempt did here
        gated = wait_at(f"step-{trainer.state.step}", self.attempt.number)
        self._poll(trainer, force=gated)
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
        if self.writer is None:   # the run failed before it started: record that much, if it is ours
            if self.attempt is not None:
                self.attempt.end(status, error=error)
            return
        wait_at("run-end", self.attempt.number)
        self.writer.finish(status, summary, error)

    def _poll(self, trainer, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_poll < self.poll_every:
            return
        self._last_poll = now
        try:
            controls = self.store.take_pending_controls(self.run_id, step=trainer.state.step)
        except sqlite3.Error as exc:   # busy past the timeout: ask again at the next poll, keep training
            print(f"warning: could not read controls ({exc}); retrying", file=sys.stderr)
            return
        last_lam = max((c["id"] for c in controls if c["key"] == LAM), default=None)
        for control in controls:
            key, value, ignored = control["key"], control["value"], None
            if key == LAM and control["id"] != last_lam:
                # several λ changes between two polls (a slider moved by arrow keys): only the last acts,
                # so the run logs one change, not one per key press
                self._record_outcome(control["id"], "superseded", f"replaced by a later λ change before step "
                                                                  f"{trainer.state.step}")
                continue
            if key == STOP:
                trainer.request_stop(str(value or "stop requested"))
            elif key == LAM:
                try:
                    trainer.set_lam(float(value), source="control")   # the trainer logs a "lam_change" event
                except (ConfigError, TypeError, ValueError) as exc:
                    ignored = f"ignored the λ change to {value!r}: {exc}"
            else:
                ignored = f"ignored unknown control {key!r} (known: {', '.join(KINDS)})"
            if ignored:
                print(f"warning: {ignored}", file=sys.stderr)
                self._record_outcome(control["id"], "ignored", ignored)

    def _record_outcome(self, control_id: int, outcome: str, note: str) -> None:
        try:
            self.store.set_control_outcome(control_id, outcome, note)
        except sqlite3.Error as exc:
            print(f"warning: could not record that control {control_id} was {outcome} ({exc})", file=sys.stderr)
