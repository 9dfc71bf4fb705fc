"""Writes a run's folder: config.json at the start, one JSON line per epoch and per event, and
result.json at the end. Plain files a person (or another tool) can read without the store."""
from __future__ import annotations

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
        with open(self.run_dir / name, "a") as fh:
            fh.write(json.dumps(record, default=float) + "\n")

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
