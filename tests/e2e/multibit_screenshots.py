"""Screenshots of the multi-bit pages in a real browser, and the what-if mixer's latency as a user sees it
(not a test: a script for looking at the layout). Trains real short runs through the CLI into a fresh
MSQ_HOME (or uses ``--home``), starts ``streamlit run dashboard/app.py`` on it, drives Debian's chromium
with Playwright and writes test-artifacts/mb-*.png at 1280×800 and 1920×1080.

    .venv/bin/python tests/e2e/multibit_screenshots.py            # ~1 min on 2 cores
    .venv/bin/python tests/e2e/multibit_screenshots.py --home /tmp/demohome
"""
from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from browser_helpers import ARGS, ARTIFACTS, CHROMIUM, ROOT, free_port
from browser_helpers import shot as take_shot

sys.path.insert(0, str(ROOT))
RUNS = {   # name -> CLI flags (tinycnn on sklearn digits: seconds each)
    "mb-coreset-50%": "--method multibit --epochs 1,3,0 --set multibit.coreset_fraction=0.5",
    "mb-full-data": "--method multibit --epochs 1,3,0",
    "bsq-α0.02": "--method bsq --epochs 1,2,1 --set bsq.decay=0.02 --set bsq.requant_every=1",
    "msq-λ50": "--method msq --epochs 1,2,1 --lam 50 --threshold 0.3",
    "uniform-4": "--method uniform --bits 4 --epochs 1,2,1",
}


def train(home: Path) -> None:
    for name, flags in RUNS.items():
        subprocess.run([sys.executable, "-m", "msq", "train", "--model", "tinycnn", "--dataset", "digits",
                        "--threads", "1", "--quiet", "--home", str(home), "--name", name, *flags.split()],
                       cwd=ROOT, check=True, stdout=subprocess.DEVNULL)


def serve(home: Path, log_path: Path):
    port = free_port()
    env = {**os.environ, "MSQ_HOME": str(home), "PYTHONUNBUFFERED": "1"}
    log = open(log_path, "wb")
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "dashboard/app.py", "--server.port", str(port),
                             "--server.headless", "true"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if urllib.request.urlopen(f"http://localhost:{port}/_stcore/health", timeout=1).read() == b"ok":
                return proc, f"http://localhost:{port}"
        except OSError:
            time.sleep(0.3)
    raise SystemExit(f"streamlit did not start: {log_path.read_text()[-2000:]}")


def shot(page, name: str, full: bool = True) -> None:
    print("wrote", take_shot(page, name, full, settle_ms=600))


def open_page(page, url: str, heading_text: str) -> None:
    page.goto(url)
    page.get_by_text(heading_text).first.wait_for(timeout=60_000)
    page.wait_for_timeout(2500)   # charts draw in their iframe


def metric(page, label: str) -> str:
    box = page.locator('[data-testid="stMetric"]').filter(has_text=label).first
    return box.locator('[data-testid="stMetricValue"]').inner_text()


def mixer_latency(page, widths) -> list[float]:
    """Seconds from a click on a uniform width to the new average bits on screen (browser round trip)."""
    out = []
    control = page.locator('[data-testid="stButtonGroup"]').first
    for b in widths:
        before = metric(page, "Average bits")
        started = time.perf_counter()
        control.get_by_role("radio", name=str(b), exact=True).click()
        deadline = time.monotonic() + 10
        while metric(page, "Average bits") == before and time.monotonic() < deadline:
            page.wait_for_timeout(5)
        out.append(time.perf_counter() - started)
    return out


def live_run(browser, url: str, home: Path) -> None:
    """A multi-bit run training in the background: the page refreshes as epochs arrive; the mixer uses the
    latest checkpoint. The run is stopped afterwards."""
    from msq.runs import launch, stop
    config = {"method": "multibit", "model": "tinycnn", "data": {"name": "digits"}, "name": "mb-live",
              "multibit": {"coreset_fraction": 0.3, "reselect_every": 1},
              "train": {"pretrain_epochs": 1, "search_epochs": 60, "finetune_epochs": 0, "threads": 1}}
    run_id = launch(home, config)
    try:
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.goto(f"{url}/multibit?run={run_id}")
        page.get_by_text("Mean acc. (trained)").first.wait_for(timeout=60_000)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and page.get_by_text("No per-width accuracy yet").count():
            page.wait_for_timeout(500)
        page.wait_for_timeout(8000)   # a few more epochs, drawn by the live refresh
        shot(page, "mb-08-live-1280")
        page.goto(f"{url}/multibit?run={run_id}&view=What-if+mixer")
        page.get_by_text("Per-layer weight widths").first.wait_for(timeout=60_000)
        page.wait_for_timeout(2000)
        shot(page, "mb-09-live-mixer-1280", full=False)
        page.close()
    finally:
        stop(home, run_id, timeout=10, kill_after=5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, help="an existing MSQ_HOME holding the runs of RUNS")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    from msq.runs import RunStore
    with tempfile.TemporaryDirectory() as tmp:
        home = args.home or Path(tmp) / "home"
        if args.home is None:
            started = time.perf_counter()
            train(home)
            print(f"trained {len(RUNS)} runs in {time.perf_counter() - started:.0f} s")
        ids = {r["name"]: r["id"] for r in RunStore(home).list_runs()}
        coreset, bsq = ids["mb-coreset-50%"], ids["bsq-α0.02"]
        ARTIFACTS.mkdir(exist_ok=True)
        proc, url = serve(home, Path(tmp) / "streamlit.log")
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
                for width, height in ((1280, 800), (1920, 1080)):
                    page = browser.new_page(viewport={"width": width, "height": height})
                    open_page(page, f"{url}/multibit?run={coreset}", "Mean acc. (trained)")
                    shot(page, f"mb-01-widths-{width}", full=False)
                    shot(page, f"mb-02-widths-{width}-full")
                    open_page(page, f"{url}/multibit?run={coreset}&view=What-if+mixer", "Per-layer weight widths")
                    page.wait_for_timeout(1500)
                    if width == 1280:
                        times = mixer_latency(page, [2, 3, 4, 5, 6, 7, 8, 2, 3, 4])
                        print(f"mixer: click → new numbers on screen: median {1000 * statistics.median(times):.0f} ms,"
                              f" max {1000 * max(times):.0f} ms over {len(times)} clicks")
                        page.locator('[data-testid="stSelectbox"]').filter(has_text="Apply the final").first.click()
                        page.get_by_role("option", name="msq-λ50", exact=False).first.click()
                        page.get_by_role("button", name="Apply", exact=True).click()
                        page.get_by_text("applied the final widths").first.wait_for(timeout=10_000)
                    shot(page, f"mb-03-mixer-{width}", full=False)
                    shot(page, f"mb-04-mixer-{width}-full")
                    for path, name, text in ((f"/run?run={coreset}", "run-multibit", "Every width, coresets"),
                                             (f"/run?run={bsq}", "run-bsq", "BSQ decay α live"),
                                             ("/compare", "compare", "Bit allocations side by side"),
                                             ("/", "runs", "select rows to act on them")):
                        open_page(page, url + path, text)
                        shot(page, f"mb-05-{name}-{width}")
                    page.goto(f"{url}/launch")
                    page.get_by_role("heading", name="Launch a run").wait_for(timeout=60_000)
                    page.get_by_text("multibit", exact=True).first.click()
                    page.get_by_text("Coreset fraction per width").first.wait_for(timeout=30_000)
                    shot(page, f"mb-06-launch-multibit-{width}")
                    page.get_by_text("bsq", exact=True).first.click()
                    page.get_by_text("BSQ decay α").first.wait_for(timeout=30_000)
                    shot(page, f"mb-07-launch-bsq-{width}", full=False)
                    page.close()
                live_run(browser, url, home)
                browser.close()
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=15)


if __name__ == "__main__":
    main()
