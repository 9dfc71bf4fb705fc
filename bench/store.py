"""The run store's cost, measured side by side in one run (not a test).

1. Training step time of LeNet-5 on mnist5k (MSQ search steps, per-layer signals every 10 steps) with
   and without ``StoreCallback``: one-epoch fits in ABBA order; a step's wall time is taken between
   consecutive ``on_step_end`` calls (wall and process CPU time), so flushes and control polls count;
   the median of the paired ratios, and the callback's own time per step. Target <= 2%.
2. Chart reads from a store holding a 100-layer x 10,000-step run (4 per-layer metrics, 5 scalars per
   step) while a writer process keeps appending to that run: the heatmap (500 columns, and all
   10,000), one layer's series, the loss curve. Target: <= 100 ms each.
3. Live latency: time from a step's scalar being handed to the writer until a reader sees it.

    python bench/store.py            # ~1.5 minutes on 2 cores
    python bench/store.py --quick    # fewer repeats
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from msq.config import RunConfig  # noqa: E402
from msq.runs import RunStore, RunWriter, new_run_id  # noqa: E402
from msq.training.callbacks import Callback  # noqa: E402
from msq.training.store_callback import StoreCallback  # noqa: E402
from msq.training.trainer import Trainer  # noqa: E402

LAYERS, STEPS, METRICS = 100, 10_000, ("lsb_density", "lsb_l1", "bits", "quant_error")
WRITER = """
import sys, time
from msq.runs import RunStore, RunWriter
store = RunStore(sys.argv[1]); writer = RunWriter(store, sys.argv[2], flush_every=0.1)
step, deadline = int(sys.argv[3]), time.monotonic() + float(sys.argv[4])
while time.monotonic() < deadline:
    step += 1
    writer.add_scalars(step, step // 100, {"loss": 1.0 / step, "task_loss": 0.5, "reg": 0.1, "lam": 1.0, "lr": 0.01,
                                            "sent": time.time()})
    if step % 10 == 0:
        writer.add_vectors(step, step // 100, {m: [step * 1e-4 + i for i in range(100)] for m in sys.argv[5:]})
    if writer.due():
        writer.flush()
    time.sleep(0.002)
writer.flush(strict=True)
"""


class StepClock(Callback):
    """Wall and CPU time between consecutive steps (the first step of a phase has no predecessor).
    CPU time of this process is what the store adds to; it is also blind to other programs' load."""

    def __init__(self) -> None:
        self.wall: list[float] = []
        self.cpu: list[float] = []
        self._last = None

    def on_phase_start(self, trainer, phase):
        self._last = None

    def on_step_end(self, trainer, scalars):
        now = (time.perf_counter(), time.process_time())
        if self._last is not None:
            self.wall.append(now[0] - self._last[0])
            self.cpu.append(now[1] - self._last[1])
        self._last = now


class TimedStoreCallback(StoreCallback):
    """StoreCallback that also adds up its own time inside the training loop (start and end excluded):
    a direct measure of its cost that the machine's load does not blur."""
    spent = 0.0

    def _timed(name):
        def call(self, *args):
            start = time.perf_counter()
            getattr(StoreCallback, name)(self, *args)
            TimedStoreCallback.spent += time.perf_counter() - start
        return call

    on_phase_start, on_step_end, on_log = _timed("on_phase_start"), _timed("on_step_end"), _timed("on_log")
    on_epoch_end, on_event = _timed("on_epoch_end"), _timed("on_event")


def step_overhead(repeats: int, home: Path) -> dict:
    cfg = RunConfig.from_dict({"model": "lenet5", "data": {"name": "mnist5k"}, "hessian": {"enabled": False},
                               "train": {"pretrain_epochs": 0, "search_epochs": 1, "finetune_epochs": 0,
                                         "threads": 1, "log_every": 10}})
    store = RunStore(home)
    out = {label: {"wall": [], "cpu": []} for label in ("plain", "store")}
    ratios = {"wall": [], "cpu": []}
    for repeat in range(repeats):
        order = ["plain", "store"] if repeat % 2 == 0 else ["store", "plain"]   # ABBA: no side always goes first
        clocks = {}
        for label in order:
            clocks[label] = StepClock()
            extra = [TimedStoreCallback(store, new_run_id())] if label == "store" else []
            Trainer(cfg, callbacks=[*extra, clocks[label]]).fit()
        for kind in ("wall", "cpu"):
            for label in order:
                out[label][kind] += getattr(clocks[label], kind)
            ratios[kind].append(statistics.median(getattr(clocks["store"], kind)) /
                                statistics.median(getattr(clocks["plain"], kind)))
    steps = len(out["store"]["wall"]) + repeats
    return {"median": {label: {k: statistics.median(v) for k, v in d.items()} for label, d in out.items()},
            "pair_ratio": {k: statistics.median(v) for k, v in ratios.items()}, "steps": len(out["plain"]["wall"]),
            "own_per_step": TimedStoreCallback.spent / steps}


def build_long_run(store: RunStore) -> str:
    run_id = store.create_run({"method": "msq", "model": "bench"}, status="running")
    store.set_layers(run_id, [{"idx": i, "fqn": f"layer{i}"} for i in range(LAYERS)])
    writer = RunWriter(store, run_id)
    for step in range(1, STEPS + 1):
        writer.add_scalars(step, step // 100, {"loss": 1.0 / step, "task_loss": 0.5, "reg": 0.1, "lam": 1.0, "lr": 0.01})
        writer.add_vectors(step, step // 100, {m: [step * 1e-4 + i for i in range(LAYERS)] for m in METRICS})
        if step % 1000 == 0:
            writer.flush(strict=True)
    writer.flush(strict=True)
    return run_id


def timed(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def read_times(home: Path, repeats: int) -> tuple[dict, list]:
    store = RunStore(home)
    run_id = build_long_run(store)
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(home), run_id, str(STEPS), "600", *METRICS],
                              env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])})
    time.sleep(2.0)                                         # let the writer get going
    reader = RunStore(home)
    try:
        results = {
            "heatmap, 500 of 10k steps": timed(lambda: reader.layer_matrix(run_id, "lsb_density", 500), repeats),
            "heatmap, all 10k steps": timed(lambda: reader.layer_matrix(run_id, "lsb_density", None), repeats),
            "one layer's series (10k)": timed(lambda: reader.layer_series(run_id, "lsb_density", 50), repeats),
            "loss curve, 2000 points": timed(lambda: reader.scalar_series(run_id, "loss", 2000), repeats),
        }
        latencies, seen = [], None
        for _ in range(300):                                # poll like a live panel, every 20 ms
            latest = reader.latest_scalar(run_id, "sent")
            if latest and latest["step"] != seen:
                seen = latest["step"]
                latencies.append(time.time() - latest["value"])
            time.sleep(0.02)
        matrix = reader.layer_matrix(run_id, "lsb_density", None)
        assert matrix.n_layers == LAYERS and matrix.n_steps > STEPS, "the writer did not append"
    finally:
        writer.terminate()
        writer.wait()
    return results, latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        overhead = step_overhead(2 if args.quick else 8, Path(tmp) / "steps")
        reads, latencies = read_times(Path(tmp) / "reads", 5 if args.quick else 20)
    med, ratio = overhead["median"], overhead["pair_ratio"]
    own = overhead["own_per_step"] / med["plain"]["wall"]
    print(f"1. training step, LeNet-5 / mnist5k search phase, {overhead['steps']} steps each, interleaved ABBA")
    print(f"   {'median step':<18} {'without store':>14} {'with store':>11} {'paired ratio':>13}")
    for kind in ("wall", "cpu"):
        print(f"   {kind + ' time (ms)':<18} {med['plain'][kind] * 1e3:>14.3f} {med['store'][kind] * 1e3:>11.3f} "
              f"{ratio[kind]:>13.3f}")
    print(f"   the callback's own time inside the loop: {overhead['own_per_step'] * 1e3:.4f} ms per step "
          f"= {100 * own:.2f}% of a step")
    met = ratio["cpu"] <= 1.02 and own <= 0.02
    print(f"   overhead {100 * (ratio['cpu'] - 1):+.2f}% (CPU, paired) / {100 * own:.2f}% (own time) -> target <= 2%: "
          f"{'MET' if met else 'NOT MET'}  (wall {100 * (ratio['wall'] - 1):+.2f}%, sensitive to other load)")
    print(f"2. reads at {LAYERS} layers x {STEPS:,} steps while a writer process appends (median)")
    for label, seconds in reads.items():
        print(f"   {label:<28} {seconds * 1e3:>8.2f} ms   ratio to 100 ms target {seconds / 0.1:.3f}  "
              f"{'MET' if seconds <= 0.1 else 'NOT MET'}")
    if latencies:
        print(f"3. live latency (writer flushes every 0.1 s, reader polls every 20 ms): median "
              f"{statistics.median(latencies) * 1e3:.0f} ms, max {max(latencies) * 1e3:.0f} ms "
              f"(the worker's default flush interval is 1 s)")


if __name__ == "__main__":
    main()
