"""Shared handles of the dashboard process, made once (``st.cache_resource``): the run store of
``MSQ_HOME``, the model/dataset catalog and the visible devices (both import torch once, lazily),
and a throttled call to the runner's ``schedule`` (reap dead workers, start queued runs).
"""
from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import streamlit as st

from msq.runs import RunStore, resolve_home, schedule

SCHEDULE_EVERY_S = 2.0


def home() -> Path:
    """``$MSQ_HOME`` (default ./runs), resolved: read on every run so tests can point it elsewhere."""
    return resolve_home(None).resolve()


@st.cache_resource(show_spinner=False)
def _store(path: str) -> RunStore:
    return RunStore(path)


def store() -> RunStore:
    """The run store of ``MSQ_HOME``: one handle per process (its sqlite connections are per thread)."""
    return _store(str(home()))


class _Throttle:
    def __init__(self) -> None:
        self.lock, self.last = threading.Lock(), 0.0


@st.cache_resource(show_spinner=False)
def _schedule_throttle(path: str) -> _Throttle:
    return _Throttle()


def tick(force: bool = False) -> None:
    """Reap dead workers and start queued runs, at most every ``SCHEDULE_EVERY_S`` seconds per store
    (every dashboard page calls this, so the queue drains while anyone watches)."""
    throttle = _schedule_throttle(str(home()))
    now = time.monotonic()
    if not force and now - throttle.last < SCHEDULE_EVERY_S:
        return
    if not throttle.lock.acquire(blocking=False):
        return
    try:
        throttle.last = now
        schedule(store())
    finally:
        throttle.lock.release()


@st.cache_resource(show_spinner="Loading the model and dataset catalog (imports torch once)…")
def catalog() -> dict:
    """Sample models and bundled datasets with their one-line descriptions."""
    import sample_models
    from msq.data import dataset_info, list_datasets
    models = {name: (sample_models.model_info(name) or {}).get("description", "")
              for name in sample_models.list_models()}
    datasets = {name: dataset_info(name) for name in list_datasets()}
    return {"models": models, "datasets": datasets}


@st.cache_resource(show_spinner=False)
def devices() -> list[tuple[str, str]]:
    """[(device, label)]: the CPU and each GPU torch can see (torch.cuda, if torch imports)."""
    out = [("cpu", f"cpu ({os.cpu_count()} cores)")]
    try:
        import torch
        if torch.cuda.is_available():
            for i in range(torch.cuda.device_count()):
                out.append((f"cuda:{i}", f"cuda:{i} — {torch.cuda.get_device_name(i)}"))
    except Exception:   # no torch, or a broken CUDA install: the CPU is still there
        pass
    return out


# -- live charts that keep zoom across refreshes -----------------------------------------------------
# st.plotly_chart remounts a chart whenever its data changes (its element id hashes the spec), which
# resets zoom on every live refresh. This small component keeps ONE iframe for a whole panel of charts
# (one plotly.js load, not one per chart) and redraws each chart in place with Plotly.react, so each
# figure's ``uirevision`` keeps the user's zoom and pan while new steps arrive. plotly.js comes from the
# installed plotly package (nothing is fetched from the network); the folder is written once.
PANEL_HTML = """<!doctype html><html><head><meta charset="utf-8"><script src="plotly.min.js"></script>
<style>
html, body { margin: 0; padding: 0; background: #fff; overflow: hidden; }
#root { display: grid; grid-template-columns: minmax(0, 1fr) minmax(0, 1fr); column-gap: 32px; row-gap: 20px; }
.cell.wide { grid-column: 1 / -1; }
@media (max-width: 900px) { #root { grid-template-columns: minmax(0, 1fr); } }
</style></head>
<body><div id="root"></div><script>
const root = document.getElementById("root");
const plots = {};          // chart key -> graph div, kept across renders so zoom state survives
let lastHeight = -1;
function post(type, extra) {
  window.parent.postMessage(Object.assign({isStreamlitMessage: true, type: type}, extra), "*");
}
function resize() {
  const height = Math.ceil(root.getBoundingClientRect().height) + 4;
  if (height !== lastHeight) { lastHeight = height; post("streamlit:setFrameHeight", {height: height}); }
}
window.addEventListener("message", function (event) {
  const msg = event.data;
  if (!msg || msg.type !== "streamlit:render" || !msg.args || !msg.args.panel) return;
  const items = JSON.parse(msg.args.panel);
  const config = Object.assign({responsive: true, displaylogo: false}, msg.args.config || {});
  const keep = new Set(items.map(function (item) { return item.key; }));
  Object.keys(plots).forEach(function (key) {
    if (!keep.has(key)) { Plotly.purge(plots[key]); plots[key].parentNode.remove(); delete plots[key]; }
  });
  const done = items.map(function (item) {
    let gd = plots[item.key];
    if (!gd) {
      const cell = document.createElement("div");
      gd = document.createElement("div");
      gd.className = "plot"; gd.dataset.key = item.key;
      cell.appendChild(gd); plots[item.key] = gd;
    }
    gd.parentNode.className = "cell" + (item.wide ? " wide" : "");
    root.appendChild(gd.parentNode);   // keeps the cells in the order given
    const fig = item.figure;
    fig.layout.autosize = true; delete fig.layout.width;
    return Plotly.react(gd, fig.data, fig.layout, config);
  });
  Promise.all(done).then(resize);
});
window.addEventListener("resize", resize);
post("streamlit:componentReady", {apiVersion: 1});
</script></body></html>"""


@st.cache_resource(show_spinner=False)
def chart_panel_folder() -> str:
    """A folder with the panel's index.html and the plotly.js of the installed plotly package."""
    import hashlib
    import shutil
    import tempfile

    import plotly
    source = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
    tag = hashlib.sha1(PANEL_HTML.encode() + str(source.stat().st_size).encode()).hexdigest()[:10]
    uid = os.getuid() if hasattr(os, "getuid") else 0
    folder = Path(tempfile.gettempdir()) / f"msq-studio-chart-panel-{uid}-{tag}"
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    if folder.is_symlink() or folder.stat().st_uid != uid:   # someone else's folder: never serve it
        folder = Path(tempfile.mkdtemp(prefix="msq-studio-chart-panel-"))
    for name, write in (("plotly.min.js", lambda p: shutil.copyfile(source, p)),
                        ("index.html", lambda p: p.write_text(PANEL_HTML))):
        target = folder / name
        if not target.is_file():
            tmp = folder / f".{name}.{os.getpid()}.tmp"
            write(tmp)
            os.replace(tmp, target)   # atomic: two dashboards starting at once never see half a file
    return str(folder)


def chart_panel():
    """The component (declared on every call: cheap, and each AppTest runtime needs its own registry)."""
    from streamlit.components.v1 import declare_component
    return declare_component("msq_chart_panel", path=chart_panel_folder())
