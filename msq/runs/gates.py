"""Gates: named points where a worker waits until a test lets it go on, so fault tests act at an exact
point of a run instead of guessing it from timing (a busy machine makes every guess wrong).

``$MSQ_GATES`` names a folder; gate NAME is armed while ``NAME.armed`` exists in it. At an armed gate
the worker of attempt A creates ``NAME@A.reached``, then waits until ``NAME@A.open`` or ``NAME.open``
(every attempt) exists. Without the variable a gate costs one environment lookup.

Gates in the code: ``step-N`` (after step N, before the controls are read; StoreCallback), ``run-end``
(before the end is recorded; StoreCallback), ``record-failure`` (before the worker records an
exception; worker.py), ``supervisor-end`` (after torchrun exited, before its supervisor records; ddp_launch.py).
"""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Optional

GATES_ENV = "MSQ_GATES"
GATE_TIMEOUT_S = 600.0     # a test that never opens its gate fails; the worker must not hang forever


def armed_path(folder: Path, name: str) -> Path:
    return Path(folder) / f"{name}.armed"


def reached_path(folder: Path, name: str, attempt: int) -> Path:
    return Path(folder) / f"{name}@{attempt}.reached"


def open_path(folder: Path, name: str, attempt: Optional[int] = None) -> Path:
    """The file that opens gate ``name`` for ``attempt`` (None: for every attempt)."""
    return Path(folder) / (f"{name}.open" if attempt is None else f"{name}@{attempt}.open")


def wait_at(name: str, attempt: int) -> bool:
    """Block at gate ``name`` while it is armed and closed; True if it was armed."""
    folder = os.environ.get(GATES_ENV)
    if not folder or not armed_path(folder, name).exists():
        return False
    opened = (open_path(folder, name, attempt), open_path(folder, name))
    reached_path(folder, name, attempt).touch()
    deadline = time.monotonic() + GATE_TIMEOUT_S
    while not any(path.exists() for path in opened) and time.monotonic() < deadline:
        time.sleep(0.02)
    return True
