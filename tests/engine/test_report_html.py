"""The HTML report in a real Chromium with the network off: it loads nothing from outside, every
figure renders, the hostile run name shows as text; and kaleido's PNG of a figure. Screenshots go to
test-artifacts/ for a person to look at."""
import os
import shutil
import struct
from pathlib import Path

import pytest

from msq.report import build_report, export_report, render_report
from test_report_helpers import HOSTILE_NAME, completed_run, killed_run, store_home

CHROMIUM = os.environ.get("MSQ_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("report"),
              pytest.mark.skipif(not Path(CHROMIUM).is_file(), reason=f"no Chromium at {CHROMIUM} "
                                 "(Debian: apt-get install chromium)")]


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    with sync_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield chromium
        chromium.close()


def open_offline(browser, html_path: Path, screenshot: Path) -> dict:
    """Open the page with networking off; what it requested, its errors, each figure's SVG and marks."""
    context = browser.new_context(offline=True, viewport={"width": 1280, "height": 900})
    try:
        requests, errors = [], []
        context.on("request", lambda r: requests.append(r.url))
        page = context.new_page()
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(html_path.as_uri())
        page.wait_for_function("document.body.dataset.figuresRendered !== undefined", timeout=30_000)
        figures = page.eval_on_selector_all(
            "[data-figure]", "els => els.map(e => [e.dataset.figure, e.querySelectorAll('.main-svg').length,"
                             " e.querySelectorAll('g.trace, g.hm image').length])")
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(screenshot), full_page=True)
        return {"requests": requests, "errors": errors, "figures": figures, "title": page.title(),
                "h1": page.inner_text("h1"), "kpis": page.inner_text(".kpis"), "notes": page.inner_text("main")}
    finally:
        context.close()


def test_html_report_opens_offline_and_draws_every_figure(browser, tmp_path):
    report = build_report(store_home(), completed_run())
    path = export_report(store_home(), completed_run(), "html", tmp_path / "report.html", report=report)
    assert "<script>alert" not in path.read_text()            # the run name is escaped everywhere
    seen = open_offline(browser, path, ARTIFACTS / "report_html.png")
    assert [u for u in seen["requests"] if not u.startswith(("file:", "data:"))] == []
    assert seen["errors"] == []
    names = [f[0] for f in seen["figures"]]
    assert names[:4] == ["allocation", "bit_heatmap", "lsb_heatmap", "hessian"] and "accuracy_compression" in names
    assert all(svgs >= 1 and marks > 0 for _, svgs, marks in seen["figures"]), seen["figures"]
    assert seen["h1"] == HOSTILE_NAME
    t = report["totals"]
    assert f"{t['compression']:.2f}×" in seen["kpis"] and f"{t['final_acc']:.2f}%" in seen["kpis"]


def test_failed_run_html_says_it_failed(browser, tmp_path):
    path = tmp_path / "failed.html"
    path.write_text(render_report(build_report(store_home(), killed_run()), "html"))
    seen = open_offline(browser, path, ARTIFACTS / "report_html_failed.png")
    assert "This run FAILED" in seen["notes"] and seen["errors"] == []


def test_png_figure_through_kaleido():
    report = build_report(store_home(), completed_run())
    png = render_report(report, "png", figure="bit_heatmap")
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", png[16:24])
    assert (width, height) == (2000, 2 * report_height(report))
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "report_bit_heatmap.png").write_bytes(png)


def report_height(report) -> int:
    from msq.report.charts import report_figures
    return report_figures(report)["bit_heatmap"]["layout"]["height"]
