"""Launching one run as several processes with torchrun, and watching it.

``python -m msq train --nproc N`` (or a stored run with ``train.nproc = N``) makes this process the
supervisor of ``torchrun --standalone --nproc_per_node N -m msq train --run-id ID``: every rank trains,
rank 0 alone writes the store and checkpoints. If torchrun ends without rank 0 having recorded an
end (a rank was killed, the rendezvous failed), the supervisor marks the run failed with the log tail.

Multi-node: run torchrun yourself on every node with its rendezvous flags (see the README), e.g.
``torchrun --nnodes 2 --nproc_per_node 8 --rdzv_backend c10d --rdzv_endpoint HOST:29400 -m msq train
--config run.json --home SHARED_HOME``: rank 0 records the run and tells the others its id. The run
store and run folder must be on storage every node sees.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Optional

from msq.runs import RunStore
from msq.runs.gates import wait_at
from msq.runs.ownership import ATTEMPT_ENV, Attempt
from msq.runs.procs import log_tail


def torchrun_command(home: Path, run_id: str, nproc: int) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
            "-m", "msq", "train", "--run-id", run_id, "--home", str(home)]


def supervise(store: RunStore, run_id: str, nproc: int, progress: bool = False, attempt: Optional[int] = None) -> int:
    """Run the ranks, forward SIGTERM/SIGINT to torchrun, and make sure the run ends recorded. The
    ranks work for this supervisor's ``attempt`` (default: $MSQ_RUN_ATTEMPT, else the run's current one)."""
    owner = Attempt.of(store, run_id, attempt)
    env = {**os.environ, ATTEMPT_ENV: str(owner.number), **({"MSQ_RANK0_PROGRESS": "1"} if progress else {})}
    proc = subprocess.Popen(torchrun_command(store.home, run_id, nproc), env=env)

    def forward(signum, frame):
        proc.send_signal(signum)

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        code = proc.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    wait_at("supervisor-end", owner.number)
    # Still "running" as our attempt: no rank recorded how it ended. A re-queued run (a resume) is a
    # newer attempt's, and the compare-and-set leaves it alone.
    owner.end("failed", only_if_running=True, log_tail=log_tail(store.run_dir(run_id) / "worker.log"),
              error=f"torchrun exited with code {code} before rank 0 recorded the end of the {nproc}-process "
                    "run (a rank died or could not start)")
    row = store.run(run_id)
    return 0 if code == 0 and row["attempt"] == owner.number and row["status"] in ("completed", "stopped") else 1


def register_torchrun_run(cfg, home: str) -> str:
    """Under a torchrun the user started (``torchrun ... -m msq train --config run.json``): rank 0 records
    a new run in the store and every rank gets its id; then each rank trains it as a worker."""
    from msq.runs.ids import new_run_id
    from msq.training.distributed import broadcast_object, init_distributed
    from msq.training.setup import resolve_device

    ctx, _ = init_distributed(resolve_device(cfg.train.device))
    run_id = None
    if ctx.is_main:
        cfg = cfg.replace(**{"train.nproc": ctx.world})
        store = RunStore(home)
        run_id = store.create_run(cfg.to_dict(), name=cfg.name, device=cfg.train.device, status="running",
                                  run_id=new_run_id())
        store.run_dir(run_id).mkdir(parents=True, exist_ok=True)
        print(run_id, flush=True)
    return broadcast_object(ctx, run_id)
