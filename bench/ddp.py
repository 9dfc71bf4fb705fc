"""Training throughput of one run on 1 process vs N data-parallel processes, side by side (not a test).

Each configuration trains the same run (same model, data, global batch, epochs) through the real CLI:
``python -m msq train`` for one process, ``--nproc N`` (torchrun, gloo on CPU / nccl on CUDA) for N.
Samples per second = training samples seen / time spent in the training phases (from the run's own
timings, so process start-up, data loading and evaluation are not counted).

    python bench/ddp.py                        # resnet20 on mnist5k, CPU: 1 process (1 and 2 threads) vs 2 x 1 thread
    python bench/ddp.py --device cuda --nproc 2
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def train(home: Path, args, nproc: int, threads: int) -> dict:
    cmd = [sys.executable, "-m", "msq", "train", "--model", args.model, "--dataset", args.dataset,
           "--epochs", f"0,{args.epochs},0", "--method", "uniform", "--bits", "4", "--device", args.device,
           "--batch-size", str(args.batch), "--set", "train.search_lr=0.05", "--threads", str(threads),
           "--nproc", str(nproc), "--quiet", "--home", str(home)]
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": str(threads)})
    if done.returncode != 0:
        raise SystemExit(f"training failed ({' '.join(cmd)}):\n{done.stderr[-3000:]}")
    run_id = done.stdout.split()[0]
    result = json.loads((home / run_id / "result.json").read_text())
    seconds = sum(v for k, v in result["timings"].items() if k not in ("eval", "hessian"))
    samples = result["steps_done"] * args.batch
    return {"seconds": seconds, "samples_per_s": samples / seconds, "final_acc": result["final_acc"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="resnet20")
    parser.add_argument("--dataset", default="mnist5k")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--nproc", type=int, default=2)
    args = parser.parse_args()

    cores = os.cpu_count() or 1
    configs = [("1 process x 1 thread", 1, 1), (f"1 process x {args.nproc} threads", 1, args.nproc),
               (f"{args.nproc} processes x 1 thread", args.nproc, 1)]
    if args.device != "cpu":
        configs = [("1 process", 1, 1), (f"{args.nproc} processes", args.nproc, 1)]
    print(f"{args.model} on {args.dataset}, global batch {args.batch}, {args.epochs} epochs, {args.device}, "
          f"{cores} CPU cores\n")
    with tempfile.TemporaryDirectory() as tmp:
        results = [(label, train(Path(tmp) / str(i), args, nproc, threads))
                   for i, (label, nproc, threads) in enumerate(configs)]
    base = results[0][1]["samples_per_s"]
    print(f"{'configuration':<26} {'train s':>8} {'samples/s':>10} {'speed-up':>9} {'val acc %':>10}")
    for label, r in results:
        print(f"{label:<26} {r['seconds']:8.1f} {r['samples_per_s']:10.0f} {r['samples_per_s'] / base:8.2f}x "
              f"{r['final_acc']:10.2f}")


if __name__ == "__main__":
    main()
