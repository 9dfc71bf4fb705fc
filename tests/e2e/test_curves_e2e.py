"""Comparing runs in a real browser (Debian's chromium through Playwright): three short real runs (MSQ at
two λ, uniform 4-bit) and a fourth on other data, queued behind them on the one CPU slot. The queued run
says where it stands; the Curves view overlays the three with smoothing on and off and a log axis; its
URL reopens the same selection; the mixed selection is flagged; Compare draws one plane per dataset;
and not one request goes anywhere but this machine. Screenshots (1440×900) go to test-artifacts/."""
from __future__ import annotations

import os
from urllib.parse import urlparse

import pytest

from browser_helpers import CHROMIUM, shot
from msq.report.chart_style import DARK_PAPER
from test_dashboard_e2e import browser, plots, server, wait_until  # noqa: F401 (fixtures)

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.xdist_group("e2e"),
              pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"{CHROMIUM} is missing: install Debian's "
                                                                      "chromium (`make chromium`)")]
VIEWPORT = {"width": 1440, "height": 900}
LOCAL_HOSTS = {"localhost", "127.0.0.1", "[::1]", "::1"}
CURVES = """() => Array.from(document.querySelectorAll('.plot')).filter(g => g.layout && g.data).map(g => ({
    key: g.dataset.key, y_type: (g.layout.yaxis || {}).type, traces: g.data.length, paper: g.layout.paper_bgcolor,
    legend: g.data.filter(t => t.showlegend !== false).map(t => t.name),
    colors: g.data.filter(t => t.showlegend !== false).map(t => t.line.color)}))"""


def tiny(name: str, method: str = "msq", lam: float = 20.0, dataset: str = "digits") -> dict:
    return {"method": method, "model": "tinycnn", "name": name, "data": {"name": dataset}, "reg": {"lam": lam},
            "uniform_bits": 4, "prune": {"threshold": 0.3}, "quant": {"keep_first_last": False},
            "train": {"pretrain_epochs": 1, "search_epochs": 2, "finetune_epochs": 1, "batch_size": 64,
                      "threads": 1, "log_every": 5}}


def curves(page) -> dict:
    """{chart key: info} of the Curves view's charts (they live in the chart panel's iframe)."""
    out = {}
    for frame in page.frames:
        try:
            out.update({c["key"]: c for c in frame.evaluate(CURVES)})
        except Exception:   # a frame being replaced: the next poll reads it
            continue
    return out


def test_compare_runs_curves_queue_and_no_request_leaves_the_machine(server, browser, monkeypatch):  # noqa: F811
    from msq.runs import RunStore, launch
    monkeypatch.setenv("MSQ_MAX_CPU_RUNS", "1")   # the runner's limit, as the dashboard's server has it
    store = RunStore(server["home"])
    ids = [launch(store, tiny("msq λ=20", lam=20.0)), launch(store, tiny("msq λ=400", lam=400.0)),
           launch(store, tiny("uniform 4-bit", method="uniform", lam=0.0))]
    other = launch(store, tiny("msq on synthetic", dataset="synthetic"))

    context = browser.new_context(viewport=VIEWPORT)
    requests: list[str] = []
    context.on("request", lambda request: requests.append(request.url))
    page = context.new_page()

    # the last run waits behind the others: its page says where it stands, not "the worker is starting"
    page.goto(f"{server['url']}/run?run={other}")
    page.get_by_text("in the cpu queue").first.wait_for(timeout=60_000)
    text = page.get_by_text("in the cpu queue").first.inner_text()
    assert "Queued" in text and ("#3 in the cpu queue" in text or "#2 in the cpu queue" in text)
    shot(page, "curves-e2e-01-queued-run-1440")
    page.goto(server["url"])
    page.locator('[data-testid="stDataFrame"]').first.wait_for(timeout=30_000)
    shot(page, "curves-e2e-01b-runs-with-queue-1440")

    wait_until(lambda: all(store.run(i)["status"] == "completed" for i in ids), 300, "the three runs to complete")
    assert all(store.run(i)["status"] == "completed" for i in ids), [store.run(i)["error"] for i in ids]

    # Curves: the three overlaid, smoothing on (the default 0.6: a faint raw trace behind each line)
    url = f"{server['url']}/curves?compare={','.join(ids)}"
    page.goto(url)
    loss = wait_until(lambda: curves(page).get("loss"), 60, "the loss chart of the Curves view", page=page)
    names = [store.run(i)["name"] for i in ids]
    assert [n.split(" · ")[0] for n in loss["legend"]] == names and loss["traces"] == 6
    assert len(set(loss["colors"])) == 3
    assert loss["paper"] == "white"                                    # a light page: the white frame
    assert {"loss", "val_acc", "avg_bits", "lam"} <= set(curves(page))
    shot(page, "curves-e2e-02-smoothed-1440")

    # smoothing off: one trace per run
    thumb = page.locator('[data-testid="stSlider"]').filter(has_text="Smoothing").get_by_role("slider")
    thumb.focus()
    thumb.press("Home")
    wait_until(lambda: (c := curves(page).get("loss")) and c["traces"] == 3, 30, "the raw curves only", page=page)
    shot(page, "curves-e2e-03-raw-1440")

    # log y axis
    page.get_by_text("Log y axis").click()
    wait_until(lambda: (c := curves(page).get("loss")) and c["y_type"] == "log", 30, "a log y axis", page=page)
    shot(page, "curves-e2e-04-log-1440")

    # the URL carries the selection: a fresh tab opened on it shows the same three runs
    assert f"compare={','.join(ids)}".replace(",", "%2C") in page.url or f"compare={','.join(ids)}" in page.url
    fresh = context.new_page()
    fresh.goto(page.url)
    again = wait_until(lambda: curves(fresh).get("loss"), 60, "the reopened selection", page=fresh)
    assert again["legend"] == loss["legend"] and again["colors"] == loss["colors"]   # same runs, same colours
    fresh.close()

    # a run on other data in the selection is flagged, and can be split off
    page.goto(f"{server['url']}/curves?compare={ids[0]},{other}")
    page.get_by_text("different models or datasets").first.wait_for(timeout=30_000)
    shot(page, "curves-e2e-05-mixed-1440")

    # Compare: one plane per model and dataset, every point with its budget
    wait_until(lambda: store.run(other)["status"] in ("completed", "running"), 120, "the fourth run to start")
    page.goto(f"{server['url']}/compare?compare={','.join(ids + [other])}")
    page.get_by_text("Accuracy vs compression — tinycnn on digits").first.wait_for(timeout=60_000)
    page.get_by_text("Accuracy vs compression — tinycnn on synthetic").first.wait_for(timeout=60_000)
    page.wait_for_timeout(1500)
    shot(page, "curves-e2e-06-compare-1440", full=True)

    # a finished run's page (resume marks, the why table with ± std errors) and the Curves view in dark mode
    page.goto(f"{server['url']}/run?run={ids[0]}")
    page.get_by_text("Why each layer got its bits").first.wait_for(timeout=60_000)
    wait_until(lambda: "Hessian sensitivity per layer" in " ".join(plots(page)), 60, "the run page's charts", page=page)
    shot(page, "curves-e2e-06b-run-page-1440")
    page.evaluate("document.querySelector('[data-testid=\"stMain\"]').scrollTo(0, 1500)")
    shot(page, "curves-e2e-06b-run-page-why-1440", settle_ms=1500)
    dark = browser.new_context(viewport=VIEWPORT, color_scheme="dark")
    dark.on("request", lambda request: requests.append(request.url))
    night = dark.new_page()
    night.goto(url)
    wait_until(lambda: curves(night).get("loss"), 60, "the Curves view in dark mode", page=night)
    assert night.evaluate("getComputedStyle(document.querySelector('[data-testid=\"stApp\"]')).backgroundColor") \
        != "rgb(255, 255, 255)"                                       # the theme followed the browser
    wait_until(lambda: curves(night).get("loss", {}).get("paper") == DARK_PAPER, 60,   # and so did the charts'
               "the charts' dark frame", page=night)
    shot(night, "curves-e2e-06c-curves-dark-1440")
    dark.close()

    # an unknown run id on Export is an error, never another run's report
    page.goto(f"{server['url']}/export?run=20991231-000000-abcdef")
    page.get_by_text("No run '20991231-000000-abcdef' in this store").first.wait_for(timeout=30_000)
    shot(page, "curves-e2e-07-export-bogus-id-1440")

    leaving = sorted({u for u in requests if urlparse(u).scheme in ("http", "https", "ws", "wss")
                      and urlparse(u).hostname not in LOCAL_HOSTS})
    assert requests and leaving == [], f"requests that left the machine: {leaving}"
    context.close()
