"""Gates: named points where a worker waits until a test lets it go on, so fault tests act at an exact
point of a run instead of guessing it from timing (a busy machine makes every guess wrong).

``$MSQ_GATES`` names a folder; gate NAME is armed while ``NAME.armed`` exists in it. At an armed gate
the worker of attempt A creates ``NAME@A.reached``, then waits until ``NAME@A.open`` or ``NAME.open``
(every attempt) exists. Without the variable a gate costs one environment lookup.
"""
from __future__ import annotations

import os
import time
from pathlib import Path

GATES_ENV = "MSQ_GATES"
GATE_TIMEOUT_S = 600.0     # a test that never opens its gate fails; the worker must not hang forever


def wait_at(name: str, attempt: int) -> bool:
    """Block at gate ``name`` while it is armed and closed; True if it was armed."""
    folder = os.environ.get(GATES_ENV)
    if not folder:
        return False
    folder = Path(folder)
    if not (folder / f"{name}.armed").exists():
        return False
    opened = (folder / f"{name}@{attempt}.open", folder / f"{name}.open")
    (folder / f"{name}@{attempt}.reached").touch()
    deadline = time.monotonic() + GATE_TIMEOUT_S
    while not any(path.exists() for path in opened) and time.monotonic() < deadline:
        time.sleep(0.02)
    return True
