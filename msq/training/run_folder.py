"""Writes a run's folder: config.json at the start, one JSON line per epoch and per event, and
result.json at the end. Plain files a person (or another tool) can read without the store.

On resume the two JSONL files are cut back to what the checkpoint covers (its epochs, its events),
so the lines an earlier attempt wrote after its checkpoint are not repeated. The folder is a copy
for people: the store row is the truth, so a folder deleted under a live worker is recreated and
reported (a "run_folder_missing" event), never a reason to fail the run.
"""
from __future__ import annotations

import contextlib
import errno
import json
import os
import sys
from pathlib import Path

from msq.training.callbacks import Callback

EPOCHS_FILE, EVENTS_FILE = "epochs.jsonl", "events.jsonl"


def write_json_atomic(path: Path, data) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.write_text(json.dumps(data, indent=2, default=float))
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)   # a full disk leaves no partial temporary file


def keep_lines(path: Path, keep) -> None:
    """Rewrite a JSONL file (atomically) with the records ``keep(index, record)`` accepts; lines that do
    not parse (a crash cut the last one short) go too."""
    if not path.exists():
        return
    records = []
    for line in path.read_text().splitlines():
        try:
            records.append(json.loads(line))
        except ValueError:
            continue
    kept = [r for i, r in enumerate(records) if keep(i, r)]
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.write_text("".join(json.dumps(r, default=float) + "\n" for r in kept))
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def append_line(path: Path, record: dict) -> None:
    """One whole JSON line, or (a full disk) none: a short write is cut back off."""
    line = (json.dumps(record, default=float) + "\n").encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        start = os.lseek(fd, 0, os.SEEK_END)
        try:
            if os.write(fd, line) != len(line):
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        except OSError:
            with contextlib.suppress(OSError):   # not every file can be truncated (a device)
                os.ftruncate(fd, start)
            raise
    finally:
        os.close(fd)


class RunFolderCallback(Callback):
    def __init__(self, run_dir: str | Path) -> None:
        self.run_dir = Path(run_dir)
        self._reporting = False

    def _write(self, trainer, write) -> None:
        """``write()``; if the folder vanished under the worker, recreate it, report that, write again."""
        try:
            write()
            return
        except FileNotFoundError:
            if self.run_dir.exists():
                raise
        self.run_dir.mkdir(parents=True, exist_ok=True)
        print(f"warning: the run folder {self.run_dir} was deleted under the worker; recreated it (the run store "
              "keeps the run; the folder's earlier files are gone)", file=sys.stderr, flush=True)
        if not self._reporting:      # the report is an event, which this callback writes too
            self._reporting = True
            try:
                trainer.emit_event("run_folder_missing", {"path": str(self.run_dir), "recreated": True})
            finally:
                self._reporting = False
        write()

    def _append(self, trainer, name: str, record: dict) -> None:
        self._write(trainer, lambda: append_line(self.run_dir / name, record))

    def on_run_start(self, trainer) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        state = trainer.state      # what the checkpoint covers (nothing on a fresh start)
        keep_lines(self.run_dir / EPOCHS_FILE, lambda i, r: i < state.epoch and r.get("epoch", 0) <= state.epoch)
        keep_lines(self.run_dir / EVENTS_FILE, lambda i, r: i < len(state.events))
        write_json_atomic(self.run_dir / "config.json", trainer.cfg.to_dict())
        write_json_atomic(self.run_dir / "layers.json", [info.as_dict() for info in trainer.layers])

    def on_epoch_end(self, trainer, scalars: dict) -> None:
        self._append(trainer, EPOCHS_FILE, {"epoch": trainer.state.epoch, "step": trainer.state.step,
                                            "phase": trainer.state.phase, **scalars})

    def on_event(self, trainer, kind: str, payload: dict) -> None:
        self._append(trainer, EVENTS_FILE, {"kind": kind, "epoch": trainer.state.epoch, "step": trainer.state.step,
                                            **payload})

    def on_run_end(self, trainer, status: str, summary: dict, error) -> None:
        self._write(trainer, lambda: write_json_atomic(self.run_dir / "result.json", summary))
