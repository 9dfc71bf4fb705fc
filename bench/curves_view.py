"""Curves view bench (a script, not a test): the server-side cost of one Curves view refresh, and how
long a step takes from the store write to the point drawn in a real browser.

    python bench/curves_view.py [--runs 10] [--metrics 5] [--curve-steps 5000] [--repeats 5] [--no-browser]
    (also run by bench/dashboard.py, after the live run page)

1. Seeds ``runs`` runs × ``metrics`` step scalars × ``steps`` steps through RunWriter (as workers write),
   with per-epoch timings, then times one refresh of the view: the store reads (``read_curves``), the
   figure builds (``curve_figure``, smoothing on) and the JSON the chart panel ships to the browser.
   Target: ≤ 300 ms for the figures.
2. Write → screen: a streamlit server on its own store and Debian's chromium on ``/curves?compare=ID``;
   this process plays the worker (RunWriter, 1 s batched commits) and notes when each written step
   shows up as the last point of the loss chart in the page. The page refreshes every 3 s.
"""
from __future__ import annotations

import argparse
import json
import math
import os
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
sys.path.insert(0, str(ROOT / "tests" / "e2e"))

from msq.runs import RunStore, RunWriter  # noqa: E402

STEP_METRICS = ("loss", "task_loss", "reg", "lam", "lr", "grad_norm", "lsb_l1", "quant_error")
# the drawn traces (_fullData): there plotly.js has decoded the packed float32 arrays into typed arrays
LAST_X = """() => { const g = Array.from(document.querySelectorAll('.plot')).find(p => p.dataset.key === 'loss');
    if (!g || !g._fullData || !g._fullData.length) return null;
    const x = g._fullData[g._fullData.length - 1].x; return x && x.length ? x[x.length - 1] : null; }"""


def seed(home: Path, runs: int, metrics: int, steps: int) -> list[str]:
    store = RunStore(home)
    keys = STEP_METRICS[:metrics]
    ids = []
    for r in range(runs):
        config = {"method": "msq", "model": "synthetic", "data": {"name": "synthetic"}, "reg": {"lam": 2.0 ** r},
                  "train": {"pretrain_epochs": 2, "search_epochs": 14, "finetune_epochs": 4}}
        run_id = store.create_run(config, name=f"bench λ={2 ** r}", status="completed")
        writer = RunWriter(store, run_id, flush_every=3600)
        for step in range(1, steps + 1):
            epoch = (step - 1) // (steps // 20)
            noise = math.sin(step * 0.7 + r) * 0.05
            writer.add_scalars(step, epoch, {k: (2.0 + i) / math.sqrt(step) + noise for i, k in enumerate(keys)})
            if step % (steps // 20) == 0:
                writer.add_scalars(step, epoch + 1, {"epoch_seconds": 3.0 + 0.1 * r})
        writer.flush(strict=True)
        ids.append(run_id)
    return ids


def time_refresh(home: Path, ids: list[str], metrics: int, repeats: int) -> dict:
    import plotly.utils

    from dashboard.components.curve_data import read_curves
    from dashboard.components.curves import curve_figure
    store = RunStore(home)
    out = {"read": [], "figures": [], "json": []}
    for _ in range(repeats):
        t0 = time.perf_counter()
        series = read_curves(store, ids, list(STEP_METRICS[:metrics]))
        t1 = time.perf_counter()
        figs = [(k, curve_figure(k, runs, smoothing=0.6)) for k, runs in series.items()]
        t2 = time.perf_counter()
        payload = json.dumps([{"key": k, "figure": f.to_plotly_json()} for k, f in figs],
                             cls=plotly.utils.PlotlyJSONEncoder)
        t3 = time.perf_counter()
        for key, value in (("read", t1 - t0), ("figures", t2 - t1), ("json", t3 - t2)):
            out[key].append(1000 * value)
    out["points"] = sum(len(r["step"]) for runs in series.values() for r in runs)
    out["payload_mb"] = len(payload) / 1e6
    return out


def write_to_screen(samples: int = 6, shots: str = "") -> list[float]:
    """Seconds from a step's commit to that step drawn as the loss chart's last point."""
    from browser_helpers import ARGS, CHROMIUM, free_port
    from playwright.sync_api import sync_playwright

    from msq.runs.procs import HOST, process_start_time
    with tempfile.TemporaryDirectory(prefix="msq-bench-curves-live-") as tmp:
        home, port = Path(tmp), free_port()
        store = RunStore(home)
        run_id = store.create_run({"method": "msq", "model": "synthetic", "data": {"name": "synthetic"}},
                                  name="live", status="running")
        # this process plays the worker: the runner sees a live pid and leaves the run running
        store.update_run(run_id, pid=os.getpid(), pid_start=process_start_time(os.getpid()), host=HOST,
                         heartbeat=time.time(), started=time.time())
        writer = RunWriter(store, run_id, flush_every=1.0)
        writer.add_scalars(1, 0, {"loss": 2.0})
        writer.flush(strict=True)
        env = {**os.environ, "MSQ_HOME": str(home)}
        server = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "dashboard/app.py", "--server.port",
                                   str(port), "--server.headless", "true"], cwd=ROOT, env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        delays = []
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                try:
                    if urllib.request.urlopen(f"http://localhost:{port}/_stcore/health", timeout=1).read() == b"ok":
                        break
                except OSError:
                    time.sleep(0.3)
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
                page = browser.new_page(viewport={"width": 1440, "height": 900})
                page.goto(f"http://localhost:{port}/curves?compare={run_id}")
                step = 1
                for _ in range(samples + 1):
                    step += 10
                    for s in range(step - 9, step + 1):
                        writer.add_scalars(s, 0, {"loss": 2.0 / s})
                    writer.flush(strict=True)
                    store.update_run(run_id, heartbeat=time.time())
                    written = time.perf_counter()
                    seen = None
                    while time.perf_counter() - written < 30 and seen is None:
                        for frame in page.frames:
                            try:
                                if frame.evaluate(LAST_X) == step:
                                    seen = time.perf_counter()
                            except Exception:   # a frame being replaced
                                pass
                        time.sleep(0.05)
                    if seen is not None:
                        delays.append(seen - written)
                    elif shots:
                        page.screenshot(path=str(Path(shots) / "bench-curves-live-missing.png"))
                browser.close()
        finally:
            store.update_run(run_id, status="stopped", ended=time.time())
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=15)
        return delays[1:]   # the first includes the page's first load


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--metrics", type=int, default=5, help=f"step scalars per run (at most {len(STEP_METRICS)})")
    parser.add_argument("--curve-steps", dest="curve_steps", type=int, default=5000)
    parser.add_argument("--no-browser", action="store_true", help="skip the write → screen measurement")
    parser.add_argument("--shots", default="", help="a folder for a screenshot when a point never shows up")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(parser)
    parser.add_argument("--repeats", type=int, default=5)
    report(parser.parse_args())


def report(args) -> None:
    """Seeds, times and prints (``args``: runs, metrics, curve_steps, repeats, no_browser, shots)."""
    with tempfile.TemporaryDirectory(prefix="msq-bench-curves-") as tmp:
        t = time.perf_counter()
        ids = seed(Path(tmp), args.runs, args.metrics, args.curve_steps)
        print(f"\nseeded {args.runs} runs × {args.metrics} metrics × {args.curve_steps} steps in {time.perf_counter() - t:.1f} s")
        out = time_refresh(Path(tmp), ids, args.metrics, args.repeats)
    print(f"\nCurves view, one refresh (median of {args.repeats}; {out['points']:,} points, smoothing on, "
          f"{out['payload_mb']:.1f} MB to the browser):")
    for key in ("read", "figures", "json"):
        print(f"  {key:<8} {statistics.median(out[key]):7.1f} ms   (min {min(out[key]):.1f})")
    figures = statistics.median(out["figures"])
    print(f"  target ≤ 300 ms for the figures: {'OK' if figures <= 300 else 'OVER'} ({figures / 300:.2f}× of the budget)")
    if not args.no_browser:
        delays = write_to_screen(shots=args.shots)
        if delays:
            print(f"\nstore write → point on screen (chromium, page refresh every 3 s, {len(delays)} samples): "
                  f"median {statistics.median(delays):.2f} s · max {max(delays):.2f} s")
        else:
            print("\nstore write → point on screen: the point never appeared within 30 s")


if __name__ == "__main__":
    main()
