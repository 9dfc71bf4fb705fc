"""Writes a run's folder: config.json at the start, one JSON line per epoch and per event, and
result.json at the end. Plain files a person (or another tool) can read without the store."""
from __future__ import annotations

import contextlib
import errno
import json
import os
from pathlib import Path

from msq.training.callbacks import Callback


def write_json_atomic(path: Path, data) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.write_text(json.dumps(data, indent=2, default=float))
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)   # a full disk leaves no partial temporary file


class RunFolderCallback(Callback):
    def __init__(self, run_dir: str | Path) -> None:
        self.run_dir = Path(run_dir)

    def _append(self, name: str, record: dict) -> None:
        """One whole line, or (a full disk) none: a short write is cut back off."""
        path, line = self.run_dir / name, (json.dumps(record, default=float) + "\n").encode()
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

    def on_run_start(self, trainer) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        write_json_atomic(self.run_dir / "config.json", trainer.cfg.to_dict())
        write_json_atomic(self.run_dir / "layers.json", [info.as_dict() for info in trainer.layers])

    def on_epoch_end(self, trainer, scalars: dict) -> None:
        self._append("epochs.jsonl", {"epoch": trainer.state.epoch, "step": trainer.state.step,
                                      "phase": trainer.state.phase, **scalars})

    def on_event(self, trainer, kind: str, payload: dict) -> None:
        self._append("events.jsonl", {"kind": kind, "epoch": trainer.state.epoch, "step": trainer.state.step,
                                      **payload})

    def on_run_end(self, trainer, status: str, summary: dict, error) -> None:
        write_json_atomic(self.run_dir / "result.json", summary)
