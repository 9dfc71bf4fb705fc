"""Which GPUs a queued run may take (standard library only: the runner never imports torch).

A run asks for ``train.device`` and ``train.nproc``: "cpu"; "cuda" = any free GPU(s); "cuda:K" = GPU K.
The runner assigns concrete GPUs when it starts the run, records them as the run's device
("cuda:2" or "cuda:0,1") and starts the worker with CUDA_VISIBLE_DEVICES set to them, so a λ sweep of
many single-GPU runs spreads over the free GPUs, one each (or ``MSQ_MAX_GPU_RUNS`` each).
"""
from __future__ import annotations

import functools
import os
import subprocess
from collections import Counter
from typing import Optional


@functools.lru_cache(maxsize=1)
def visible_gpus() -> tuple[int, ...]:
    """GPU indices this machine offers: $MSQ_GPUS, else $CUDA_VISIBLE_DEVICES, else nvidia-smi, else none."""
    for var in ("MSQ_GPUS", "CUDA_VISIBLE_DEVICES"):
        value = os.environ.get(var)
        if value is not None:
            return tuple(int(v) for v in value.split(",") if v.strip().isdigit())
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=index", "--format=csv,noheader"], capture_output=True,
                             text=True, timeout=5).stdout
    except (OSError, subprocess.SubprocessError):
        return ()
    return tuple(int(line) for line in out.split() if line.strip().isdigit())


def parse_assignment(device: str) -> list[str]:
    """The queue slots a run's device occupies: "cpu" -> ["cpu"], "cuda:0,1" -> ["cuda:0", "cuda:1"]."""
    if device == "cuda":
        return ["cuda:0"]
    if device.startswith("cuda:"):
        return [f"cuda:{k}" for k in device[5:].split(",") if k]
    return [device]


def assign(requested: str, nproc: int, busy: Counter, limit, gpus: Optional[tuple] = None) -> Optional[str]:
    """The device string to start a run on now, or None when its slots are taken.

    ``busy`` counts running runs per slot; ``limit(slot)`` is how many may share one.
    """
    if requested == "cpu" or not requested.startswith("cuda"):
        return requested if busy[requested] < limit(requested) else None
    if requested.startswith("cuda:"):
        return requested if busy[requested] < limit(requested) else None
    pool = gpus if gpus is not None else visible_gpus()
    if not pool:                       # no way to tell: behave like one GPU, cuda:0
        pool = (0,)
    free = [k for k in pool if busy[f"cuda:{k}"] < limit(f"cuda:{k}")]
    if len(free) < nproc:
        return None
    return "cuda:" + ",".join(str(k) for k in sorted(free, key=lambda k: busy[f"cuda:{k}"])[:nproc])
