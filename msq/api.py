"""The notebook entry point: ``msq.train(cfg)``."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from msq.config import RunConfig
from msq.training.callbacks import Callback
from msq.training.console import ConsoleProgress
from msq.training.run_folder import RunFolderCallback
from msq.training.trainer import Trainer


@dataclass
class TrainResult:
    model: object          # the trained, fake-quantized torch model
    summary: dict          # what result.json holds
    trainer: Trainer


def train(cfg: RunConfig | dict | None = None, *, run_dir: Optional[str | Path] = None,
          callbacks: Optional[list[Callback]] = None, progress: bool = True) -> TrainResult:
    """Train one run in this process. ``run_dir`` (optional) receives config.json, result.json and checkpoints."""
    if cfg is None:
        cfg = RunConfig()
    elif isinstance(cfg, dict):
        cfg = RunConfig.from_dict(cfg)
    listeners = list(callbacks or [])
    if run_dir is not None:
        listeners.insert(0, RunFolderCallback(run_dir))
    if progress:
        listeners.append(ConsoleProgress(bar=False))
    trainer = Trainer(cfg, callbacks=listeners, run_dir=run_dir)
    summary = trainer.fit()
    return TrainResult(model=trainer.model, summary=summary, trainer=trainer)
