"""Dashboard bench (a script, not a test): how long the live run page takes to build, and how long a
metric takes from the worker's write to the page's data read.

    python bench/dashboard.py [--layers 60] [--steps 2000] [--repeats 7]

1. Seeds a synthetic run through the real store API (RunStore + RunWriter, as a worker writes): L layers ×
   S steps of per-layer vectors (LSB density, bits, L1, quantization error) and step scalars, epoch
   scalars, prune / Hessian / phase / λ events and sensitivity vectors.
2. Times the server-side work of one refresh of the run page: the store reads (``read_snapshot``), the
   figure builders (``build_figures``) and the JSON the chart panel ships to the browser; then the whole
   page script under AppTest (streamlit elements included). Target: ≤ 300 ms.
3. Live latency: a separate writer process writes steps through RunWriter (1 s batched commits, like a
   worker) while this process polls the store the way the page does; prints write → visible latency. On
   screen, add up to one page refresh period (2 s) on top.
4. The Curves view (``bench/curves_view.py``): one refresh's figures for 10 runs × 5 metrics × 5,000
   steps (target ≤ 300 ms) and, in chromium, the time from a store write to the point on screen.
5. First load after a restart: a fresh ``streamlit run dashboard/app.py`` (its own MSQ_HOME, empty and
   with a few runs), then Debian's chromium opens the landing page (Runs); the time from the request to
   the page's main content on screen (the runs table, or "No runs yet"), which includes the first script
   run: every import the router and the landing page make. ``--first-load-only`` runs just this.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from msq.runs import RunStore, RunWriter  # noqa: E402

sys.path.insert(0, str(ROOT / "bench"))
import curves_view  # noqa: E402

WRITER = """
import sys, time
sys.path.insert(0, {root!r})
from msq.runs import RunStore, RunWriter
store = RunStore({home!r})
writer = RunWriter(store, {run_id!r}, flush_every=1.0)
step, end = 0, time.time() + {seconds}
while time.time() < end:
    step += 1
    writer.add_scalars(step, 0, {{"probe": time.time()}})
    writer.add_vectors(step, 0, {{"lsb_density": [0.5] * {layers}}})
    if writer.due():
        writer.flush()
    time.sleep(0.01)          # ~100 steps/s, a fast small model
writer.flush()
"""


def seed(home: Path, layers: int, steps: int) -> str:
    """A finished-looking run of ``layers`` × ``steps`` written through RunWriter."""
    rng = random.Random(0)
    store = RunStore(home)
    config = {"method": "msq", "model": "synthetic", "name": f"bench {layers}x{steps}", "data": {"name": "synthetic"},
              "reg": {"lam": 32.0}, "prune": {"threshold": 0.05, "min_bits": 2},
              "train": {"pretrain_epochs": 2, "search_epochs": 14, "finetune_epochs": 4, "log_every": 1}}
    run_id = store.create_run(config, name=config["name"], status="running")
    store.set_layers(run_id, [{"idx": i, "fqn": f"block{i // 3}.conv{i % 3}", "kind": "conv2d", "shape": [64, 64, 3, 3],
                               "params": 36864 + 512 * i, "macs": 10 ** 6, "bits": 8, "fixed": i in (0, layers - 1)}
                              for i in range(layers)])
    writer = RunWriter(store, run_id, flush_every=3600)
    bits = [8.0] * layers
    per_epoch = steps // 20
    density = [0.5] * layers
    for step in range(1, steps + 1):
        epoch = (step - 1) // per_epoch
        writer.add_scalars(step, epoch, {"loss": 2.0 / math.sqrt(step), "task_loss": 1.5 / math.sqrt(step),
                                         "reg": 0.1, "lam": 32.0, "lr": 0.005})
        density = [max(0.0, d - rng.random() * 0.0005) for d in density]
        writer.add_vectors(step, epoch, {"lsb_density": density, "bits": bits, "lsb_l1": density,
                                         "quant_error": [1e-4] * layers})
        if step % per_epoch == 0:
            writer.add_scalars(step, epoch + 1, {"val_acc": 80 + epoch * 0.5, "val_loss": 0.5, "train_acc": 85.0,
                                                 "train_loss": 0.4, "avg_bits": sum(bits) / layers,
                                                 "compression": 32 * layers / sum(bits), "epoch_seconds": 3.0})
            if epoch in (0, 2, 16):
                writer.add_event(step, epoch, "phase", {"phase": {0: "pretrain", 2: "search", 16: "finetune"}[epoch],
                                                        "epochs": 2})
            if 2 <= epoch < 16:
                sens = [rng.lognormvariate(-6, 1) for _ in range(layers)]
                mean = sum(sens) / layers
                writer.add_vectors(step, epoch, {"sensitivity": sens, "sensitivity_se": [s / 10 for s in sens]})
                writer.add_event(step, epoch, "hessian", {"mean_sensitivity": mean, "seconds": 0.5})
                for i in rng.sample(range(1, layers - 1), 4):
                    if bits[i] > 2:
                        k = 2 if sens[i] < mean and bits[i] > 3 else 1
                        writer.add_event(step, epoch, "prune", {"index": i, "fqn": f"block{i // 3}.conv{i % 3}",
                                                                "old_bits": bits[i], "new_bits": bits[i] - k, "k": k,
                                                                "density": density[i], "sensitivity": sens[i],
                                                                "mean_sensitivity": mean})
                        bits[i] -= k
                        writer.set_layer_bits(f"block{i // 3}.conv{i % 3}", int(bits[i]))
        if step == steps // 2:
            writer.add_event(step, epoch, "lam_change", {"old": 32.0, "new": 64.0, "source": "control"})
        if step % 500 == 0:
            writer.flush(strict=True)
    writer.flush(strict=True)
    return run_id


def time_page_build(home: Path, run_id: str, repeats: int) -> dict:
    import plotly.utils

    from dashboard.components.live import build_figures
    from dashboard.components.snapshot import read_snapshot
    store = RunStore(home)
    out = {"read": [], "figures": [], "json": [], "total": []}
    for _ in range(repeats):
        t0 = time.perf_counter()
        snap = read_snapshot(store, run_id)
        t1 = time.perf_counter()
        figs = build_figures(snap, chosen=snap.layer_names[1:5])
        t2 = time.perf_counter()
        payload = json.dumps([{"key": k, "figure": f.to_plotly_json()} for k, f in figs.items()],
                             cls=plotly.utils.PlotlyJSONEncoder)
        t3 = time.perf_counter()
        for key, value in (("read", t1 - t0), ("figures", t2 - t1), ("json", t3 - t2), ("total", t3 - t0)):
            out[key].append(1000 * value)
    out["payload_kb"] = len(payload) / 1000
    out["charts"] = len(figs)
    return out


def time_apptest(home: Path, run_id: str, repeats: int) -> list[float]:
    from streamlit.testing.v1 import AppTest
    os.environ["MSQ_HOME"] = str(home)
    at = AppTest.from_file(str(ROOT / "dashboard" / "app.py"), default_timeout=120)
    at.run()
    at.query_params["run"] = run_id
    at.switch_page("app_pages/run.py").run()          # warm: imports, caches
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        at.run()
        times.append(1000 * (time.perf_counter() - t))
        assert not at.exception, at.exception
    return times


def live_latency(home: Path, layers: int, seconds: float = 8.0) -> list[float]:
    """Write → visible: a writer process stamps each step with its wall time; we poll like the page."""
    store = RunStore(home)
    run_id = store.create_run({"method": "msq", "model": "synthetic"}, name="latency", status="running")
    store.set_layers(run_id, [{"idx": i, "fqn": f"l{i}", "params": 10, "bits": 8} for i in range(layers)])
    code = WRITER.format(root=str(ROOT), home=str(home), run_id=run_id, seconds=seconds, layers=layers)
    proc = subprocess.Popen([sys.executable, "-c", code])
    seen, delays = 0, []
    while proc.poll() is None:
        latest = store.latest_scalars(run_id).get("probe")
        if latest and latest["step"] > seen:
            now = time.time()
            # every step written since the last poll became visible now: its delay is now - its stamp
            rows = store.scalar_series(run_id, "probe", max_points=None)["probe"]
            delays += [1000 * (now - v) for s, v in zip(rows["step"], rows["value"]) if s > seen]
            seen = latest["step"]
        time.sleep(0.05)
    return delays


FIRST_CONTENT = ('[data-testid="stMain"] [data-testid="stDataFrame"], '
                 '[data-testid="stMain"] [data-testid="stAlert"]')   # the runs table, or "No runs yet"


def first_load(runs: int) -> dict:
    """One restart: seconds to a healthy server, then from the browser's request to the landing page's
    title and its main content (the runs table, or the empty state) visible."""
    sys.path.insert(0, str(ROOT / "tests" / "e2e"))
    from browser_helpers import ARGS, CHROMIUM, free_port
    from playwright.sync_api import sync_playwright
    with tempfile.TemporaryDirectory(prefix="msq-bench-first-load-") as tmp:
        home, port = Path(tmp), free_port()
        store = RunStore(home)
        for i in range(runs):
            run_id = store.create_run({"method": "msq", "model": "synthetic", "data": {"name": "synthetic"},
                                       "reg": {"lam": 2.0 ** i}}, name=f"first load {i}", status="completed")
            writer = RunWriter(store, run_id, flush_every=3600)
            writer.add_scalars(10, 1, {"val_acc": 80.0 + i, "avg_bits": 8.0 - i / 2, "compression": 4.0 + i})
            writer.flush(strict=True)
        env = {**os.environ, "MSQ_HOME": str(home)}
        started = time.perf_counter()
        server = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "dashboard/app.py", "--server.port",
                                   str(port), "--server.headless", "true"], cwd=ROOT, env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            deadline = time.monotonic() + 120
            while True:
                try:
                    if urllib.request.urlopen(f"http://localhost:{port}/_stcore/health", timeout=1).read() == b"ok":
                        break
                except OSError:
                    if time.monotonic() > deadline or server.poll() is not None:
                        raise RuntimeError("the streamlit server did not start") from None
                    time.sleep(0.1)
            healthy = time.perf_counter() - started
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
                page = browser.new_page(viewport={"width": 1440, "height": 900})
                t0 = time.perf_counter()
                page.goto(f"http://localhost:{port}/")
                page.locator('[data-testid="stMain"] h1').filter(has_text="Runs").wait_for(timeout=120_000)
                title = time.perf_counter() - t0
                page.locator(FIRST_CONTENT).first.wait_for(timeout=120_000)
                content = time.perf_counter() - t0
                chart = None
                if runs:   # the landing page's accuracy-vs-compression chart of the runs shown
                    page.locator('[data-testid="stMain"] .js-plotly-plot').first.wait_for(timeout=120_000)
                    chart = time.perf_counter() - t0
                browser.close()
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=15)
    return {"server": healthy, "title": title, "content": content, "chart": chart}


def report_first_load(repeats: int) -> None:
    print(f"\nfirst load after a restart (fresh server each time, chromium; {repeats} repetitions):")
    for runs in (0, 5):
        times = [first_load(runs) for _ in range(repeats)]
        content = [t["content"] for t in times]
        print(f"  {runs} runs in the store: main content on screen after "
              + ", ".join(f"{c:.2f}" for c in content) + f" s (median {statistics.median(content):.2f} s); "
              f"title {statistics.median([t['title'] for t in times]):.2f} s, server healthy "
              f"{statistics.median([t['server'] for t in times]):.2f} s after its start"
              + (f"; its chart {statistics.median([t['chart'] for t in times]):.2f} s" if runs else ""))


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, default=60)
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=7)
    curves_view.add_arguments(parser)
    parser.add_argument("--skip-curves", action="store_true", help="only the live run page")
    parser.add_argument("--first-load-repeats", type=int, default=3, help="restarts timed in part 5 (0: skip)")
    parser.add_argument("--first-load-only", action="store_true", help="only part 5, the first load after a restart")
    args = parser.parse_args()
    if args.first_load_only:
        report_first_load(args.first_load_repeats)
        return
    with tempfile.TemporaryDirectory(prefix="msq-bench-dashboard-") as tmp:
        home = Path(tmp)
        t = time.perf_counter()
        run_id = seed(home, args.layers, args.steps)
        print(f"seeded {args.layers} layers × {args.steps} steps through RunWriter in {time.perf_counter() - t:.1f} s")
        build = time_page_build(home, run_id, args.repeats)
        print(f"\nlive run page, server side (median of {args.repeats}; {build['charts']} charts, "
              f"{build['payload_kb']:.0f} kB to the browser):")
        for key in ("read", "figures", "json", "total"):
            print(f"  {key:<8} {statistics.median(build[key]):7.1f} ms   (min {min(build[key]):.1f})")
        page = time_apptest(home, run_id, args.repeats)
        median = statistics.median(page)
        print(f"  whole page script under AppTest: {median:.1f} ms median (min {min(page):.1f})")
        verdict = "OK" if statistics.median(build["total"]) <= 300 else "OVER"
        print(f"  target ≤ 300 ms for the figures of one refresh: {verdict} "
              f"({statistics.median(build['total']) / 300:.2f}× of the budget)")
        delays = live_latency(home, args.layers)
        print(f"\nwrite → visible in the store (writer process, 1 s batched commits, {len(delays)} steps):")
        print(f"  median {statistics.median(delays):.0f} ms · p95 {pct(delays, 0.95):.0f} ms · "
              f"max {max(delays):.0f} ms")
        print(f"  on screen: plus the page refresh (every 2 s) → typically ≤ {pct(delays, 0.95) / 1000 + 2:.1f} s")
    if not args.skip_curves:
        curves_view.report(args)   # 4. the Curves view: figures for runs × metrics × steps, write → screen
    if args.first_load_repeats:
        report_first_load(args.first_load_repeats)   # 5. the first page load after a restart


if __name__ == "__main__":
    main()
