"""Checkpoints written atomically (temp file + os.replace), loaded with weights_only=True, the last two
kept (file names and the integrity check: ``msq.runs.checkpoint_files``).

    save_checkpoint(run_dir / CHECKPOINT_NAME, payload, previous=run_dir / PREVIOUS_NAME)
    payload, path = load_first_readable(resume_candidates(run_dir))

The payload is serialized in memory first and written with plain file writes, so a full disk raises
``OSError(ENOSPC)`` naming the file (torch's own writer reports it as an unexplained RuntimeError),
and the temporary file is removed whatever goes wrong: a reader sees the old file or the new one.
"""
from __future__ import annotations

import io
import os
import pickle
import sys
from pathlib import Path
from typing import Callable, Optional

import torch

from msq.errors import CheckpointError
from msq.runs.checkpoint_files import (CHECKPOINT_NAME, CORRUPT_SUFFIX, PREVIOUS_NAME, STOP_NAME, damage,  # noqa: F401
                                       existing, unreadable_message)

Notify = Callable[[str], None]


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def save_checkpoint(path: str | Path, payload: dict, previous: Optional[str | Path] = None) -> Path:
    """Write ``payload`` to ``path`` so that a reader never sees a half-written file, even if we are
    killed; with ``previous``, the file it replaces is kept there (the checkpoint before it)."""
    path = Path(path)
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as fh:
            fh.write(buffer.getbuffer())
            fh.flush()
            os.fsync(fh.fileno())
        if previous is not None and path.exists():
            os.replace(path, previous)
        os.replace(tmp, path)
    except OSError as exc:
        if exc.filename is None:      # a failed write names no file: say which checkpoint it was
            raise OSError(exc.errno, exc.strerror, str(path)) from None
        raise
    finally:
        tmp.unlink(missing_ok=True)   # a failed write or replace leaves no temporary file behind
    return path


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict:
    return torch.load(Path(path), map_location=map_location, weights_only=True)


def _problem(path: Path, map_location) -> tuple[Optional[dict], Optional[str]]:
    """(payload, None) when ``path`` loads as a checkpoint, else (None, why not)."""
    broken = damage(path)
    if broken:
        return None, broken
    try:
        payload = load_checkpoint(path, map_location)
    except pickle.UnpicklingError:   # torch's long advice on loading it unsafely is not for a run's own file
        return None, "not a weights-only checkpoint (it holds objects torch.load refuses to unpickle safely)"
    except Exception as exc:   # torch's reader errors name neither the file nor the cause
        return None, f"unreadable ({type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''})"
    if not isinstance(payload, dict) or "model" not in payload:
        return None, "not a training checkpoint (no model state inside)"
    return payload, None


def load_first_readable(paths: list[Path], map_location: str | torch.device = "cpu", what: str = "cannot load the run",
                        notify: Optional[Notify] = None) -> Optional[tuple[dict, Path]]:
    """(payload, path) of the first of ``paths`` that exists and loads; each one skipped is told to
    ``notify`` (default: stderr) in one line naming it. None when none exists; ``CheckpointError`` (one
    line, every file and its problem) when all that exist are damaged."""
    notify = notify or _stderr
    problems: dict[Path, str] = {}
    for path in existing([Path(p) for p in paths]):
        payload, problem = _problem(path, map_location)
        if payload is not None:
            for skipped, why in problems.items():
                notify(f"warning: {skipped} is {why}; falling back to {path}")
            return payload, path
        problems[path] = problem
    if problems:
        raise CheckpointError(unreadable_message(problems, what))
    return None


def set_aside(path: Path) -> Path:
    """Rename a damaged checkpoint to ``<name>.corrupt`` so the next save does not keep it as the
    previous one (the good one stays there)."""
    target = path.with_name(path.name + CORRUPT_SUFFIX)
    os.replace(path, target)
    return target
