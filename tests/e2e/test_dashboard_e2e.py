"""The dashboard in a real browser: `streamlit run dashboard/app.py` on a free port with its own
MSQ_HOME, driven by Playwright through Debian's chromium (never a downloaded browser). Launch a run
from the form, watch the bit-allocation heatmap and the LSB-sparsity chart fill in while it trains,
zoom a chart and see the zoom survive live refreshes, move the live λ slider, stop the run, download
the report. Screenshots go to test-artifacts/ (1280×800 and 1920×1080)."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request

import pytest

from browser_helpers import ARGS, ARTIFACTS, CHROMIUM, ROOT, free_port, shot

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.xdist_group("e2e"),
              pytest.mark.skipif(not os.path.exists(CHROMIUM),
                                 reason=f"{CHROMIUM} is missing: install Debian's chromium (`make chromium`) "
                                        "to run the browser tests")]
# the run page's charts live in one iframe (the chart panel), one plotly graph div per chart
PLOT_INFO = """() => Array.from(document.querySelectorAll('.plot')).filter(g => g.layout && g.data).map(g => {
    const x = g.data[0] && g.data[0].x ? Array.from(g.data[0].x) : [];
    const axis = g.layout.xaxis || {};
    return {key: g.dataset.key, title: (g.layout.title || {}).text || g.dataset.key, x: x.length,
            last: x.length ? x[x.length - 1] : null, range: axis.range ? Array.from(axis.range) : null,
            autorange: axis.autorange}; })"""


def wait_until(predicate, timeout: float, what: str, interval: float = 0.25, page=None):
    """Poll ``predicate``; on timeout fail, leaving a screenshot of ``page`` in test-artifacts/."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    if page is not None:
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "e2e-timeout.png"))
        what += f" (frames: {[f.url[-40:] for f in page.frames]}; screenshot: test-artifacts/e2e-timeout.png)"
    pytest.fail(f"timed out after {timeout} s waiting for {what}")


@pytest.fixture
def server(tmp_path):
    """The dashboard as a user starts it, on a free port, with an empty MSQ_HOME."""
    port, home = free_port(), tmp_path / "home"
    env = {**os.environ, "MSQ_HOME": str(home), "MSQ_MAX_CPU_RUNS": "1", "PYTHONUNBUFFERED": "1"}
    log = open(tmp_path / "streamlit.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "dashboard/app.py", "--server.port", str(port),
                             "--server.headless", "true"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)

    def healthy():
        try:
            return urllib.request.urlopen(f"http://localhost:{port}/_stcore/health", timeout=1).read() == b"ok"
        except OSError:
            return proc.poll() is not None and pytest.fail((tmp_path / "streamlit.log").read_text())
    try:
        wait_until(healthy, 60, "the streamlit server")
        yield {"url": f"http://localhost:{port}", "home": home}
        from msq.runs import RunStore, stop
        store = RunStore(home)
        for row in store.list_runs(status=("running", "queued")):   # never leave a worker behind
            stop(store, row["id"], timeout=5, kill_after=2)
    finally:   # the server runs in its own session: end it whatever happened above
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        log.close()


@pytest.fixture
def browser():
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


def plots(page) -> dict:
    """{title: info} of every live chart on the page."""
    out = {}
    for frame in page.frames:
        try:
            infos = frame.evaluate(PLOT_INFO)
        except Exception as exc:   # a frame that is being replaced
            print("frame not readable:", frame.url[-60:], str(exc)[:200])
            continue
        for info in infos:
            out[info["title"]] = {**info, "frame": frame}
    return out


def plot(page, prefix: str):
    return next((v for k, v in plots(page).items() if k.startswith(prefix)), None)


def fill_number(page, label: str, value) -> None:
    field = page.get_by_role("spinbutton", name=label, exact=True)
    field.fill(str(value))
    field.press("Enter")
    page.wait_for_timeout(300)


def choose(page, label: str, option: str) -> None:
    page.locator('[data-testid="stSelectbox"]').filter(has_text=label).first.click()
    page.get_by_role("option", name=option, exact=True).click()
    page.wait_for_timeout(300)


def test_launch_watch_steer_stop_and_export_in_a_real_browser(server, browser):
    from msq.runs import RunStore
    page = browser.new_page(viewport={"width": 1280, "height": 800}, accept_downloads=True)
    page.goto(server["url"])
    page.get_by_text("No runs yet").first.wait_for(timeout=60_000)
    shot(page, "e2e-01-empty-runs-1280")

    # launch from the form: tinycnn on digits, every layer searched, a long search so there is time to watch
    page.goto(server["url"] + "/launch")
    page.get_by_role("heading", name="Launch a run").wait_for(timeout=60_000)
    page.get_by_role("spinbutton", name="Seed").wait_for(timeout=60_000)
    choose(page, "Model", "tinycnn")
    choose(page, "Dataset", "digits")
    for label, value in (("Pretrain epochs", 1), ("Search epochs", 500), ("Finetune epochs", 1),
                         ("α — prune threshold", 0.3)):
        fill_number(page, label, value)
    page.get_by_text("Keep the first and last layers at fixed bits").click()
    page.get_by_text("Advanced: optimizer and logging").click()
    fill_number(page, "CPU threads (0 = auto)", 1)
    fill_number(page, "Log every (steps)", 5)
    shot(page, "e2e-02-launch-form-1280", full=True)
    page.get_by_role("button", name="Launch 1 run").click()
    page.wait_for_url("**/run?run=*", timeout=30_000)
    run_id = page.url.split("run=")[1].split("&")[0]
    store = RunStore(server["home"])
    config = store.run(run_id)["config"]
    assert (config["model"], config["data"]["name"], config["train"]["search_epochs"]) == ("tinycnn", "digits", 500)
    assert config["quant"]["keep_first_last"] is False and config["prune"]["threshold"] == 0.3

    # the bit-allocation heatmap and the LSB-density heatmap fill in while it trains
    first_bits = wait_until(lambda: plot(page, "Bit allocation per layer"), 60, "the bit-allocation heatmap",
                            page=page)
    first_density = wait_until(lambda: plot(page, "LSB density per layer"), 30, "the LSB-density heatmap")
    wait_until(lambda: (p := plot(page, "LSB density per layer")) and p["last"] > first_density["last"] + 40,
               60, "new steps in the LSB-density heatmap")
    wait_until(lambda: (p := plot(page, "Bit allocation per layer")) and p["x"] > first_bits["x"], 60,
               "a new epoch column in the bit-allocation heatmap")
    shot(page, "e2e-03-run-live-1280")
    shot(page, "e2e-04-run-live-1280-full", full=True)

    # zoom into the loss chart: the zoom survives the next live refreshes (uirevision)
    loss = plot(page, "Training loss per step")
    frame = loss["frame"]
    graph = frame.locator(f'.plot[data-key="{loss["key"]}"]')
    graph.scroll_into_view_if_needed()
    zoomed = None
    for _ in range(3):    # a drag that overlaps a redraw can be dropped by plotly: try again
        box = graph.locator(".nsewdrag").first.bounding_box()
        page.mouse.move(box["x"] + box["width"] * 0.2, box["y"] + box["height"] * 0.5)
        page.mouse.down()
        for k in range(1, 11):
            page.mouse.move(box["x"] + box["width"] * (0.2 + 0.03 * k), box["y"] + box["height"] * (0.5 + 0.02 * k))
        page.mouse.up()
        deadline = time.monotonic() + 4
        while zoomed is None and time.monotonic() < deadline:
            p = plot(page, "Training loss per step")
            zoomed = p if p and p["autorange"] is False else None
            time.sleep(0.2)
        if zoomed:
            break
    assert zoomed, "the drag-zoom on the loss chart did not register"
    last_before = zoomed["last"]
    wait_until(lambda: (p := plot(page, "Training loss per step")) and p["last"] > last_before + 20, 30,
               "live data to arrive after the zoom")
    after = plot(page, "Training loss per step")
    assert after["autorange"] is False and after["range"] == pytest.approx(zoomed["range"])

    # move the live λ slider: the worker applies it and logs a λ-change event
    page.evaluate("document.querySelector('[data-testid=\"stMain\"]').scrollTo(0, 0)")
    thumb = page.locator('[data-testid="stSlider"]').filter(has_text="λ live").get_by_role("slider")
    thumb.focus()
    for _ in range(3):      # up the log grid from 32 (40, 50, 64): each step is sent to the worker
        thumb.press("ArrowRight")
        page.wait_for_timeout(400)
    target = float(thumb.get_attribute("aria-valuetext"))
    assert target > 32.0
    changes = wait_until(lambda: (c := store.events(run_id, "lam_change")) and c[-1]["payload"]["new"] == target and c,
                         30, f"the worker's λ-change event to {target:g}", page=page)
    assert changes[0]["payload"]["old"] == 32.0 and all(c["payload"]["source"] == "control" for c in changes)
    frame.get_by_text(re.compile(rf"λ \d+→{target:g}")).first.wait_for(timeout=15_000)   # the dashed mark
    shot(page, "e2e-05-lambda-moved-1280")

    # stop the run
    page.get_by_role("button", name="Stop run").click()
    wait_until(lambda: store.run(run_id)["status"] == "stopped", 30, "the run to stop")
    resume = page.get_by_role("button", name="Resume")
    wait_until(lambda: resume.is_enabled(), 20, "the page to show the stopped run (Resume enabled)", page=page)
    shot(page, "e2e-06-stopped-1280", full=True)

    # download the bit-allocation report
    page.goto(f"{server['url']}/export?run={run_id}")
    page.get_by_role("button", name="JSON", exact=True).wait_for(timeout=30_000)
    with page.expect_download(timeout=60_000) as download:
        page.get_by_role("button", name="JSON", exact=True).click()
    target = ARTIFACTS / download.value.suggested_filename
    download.value.save_as(target)
    report = json.loads(target.read_text())
    assert report["run"]["id"] == run_id and list(report["layers"]) == ["conv1", "conv2", "fc"]
    assert report["totals"]["compression"] > 0 and target.name.startswith(f"msq-report-{run_id}")
    shot(page, "e2e-07-export-1280", full=True)

    # every page at 1920×1080, for a look at the layout
    wide = browser.new_page(viewport={"width": 1920, "height": 1080})
    for path, name in (("/", "runs"), (f"/run?run={run_id}", "run"), ("/launch", "launch"), ("/compare", "compare"),
                       (f"/export?run={run_id}", "export")):
        wide.goto(server["url"] + path)
        wide.locator('[data-testid="stMain"] :is(h1, h2)').first.wait_for(timeout=30_000)
        wide.wait_for_timeout(2500)
        shot(wide, f"e2e-08-{name}-1920", full=True)
    wide.close()

    # delete it from the Runs page: select its row, confirm in the dialog; the store row and folder go
    page.goto(server["url"])
    grid = page.locator('[data-testid="stDataFrame"]').first
    grid.wait_for(timeout=30_000)
    page.wait_for_timeout(1000)
    for attempt in range(3):   # the grid is a canvas: click the first row's checkbox by position
        box = grid.bounding_box()
        page.mouse.click(box["x"] + 16, box["y"] + 35 + 17)
        try:
            page.get_by_text("1 selected").first.wait_for(timeout=5_000)
            break
        except Exception:
            if attempt == 2:
                raise
    page.get_by_role("button", name="Delete…").click()
    page.get_by_role("dialog").get_by_role("button", name="Delete").click()
    wait_until(lambda: store.list_runs() == [], 15, "the run to be deleted", page=page)
    page.get_by_text("Deleted 1 run(s).").wait_for(timeout=15_000)
    page.get_by_text("No runs yet").first.wait_for(timeout=15_000)
    assert store.list_runs() == [] and not (server["home"] / run_id).exists()
    shot(page, "e2e-09-deleted-1280")
