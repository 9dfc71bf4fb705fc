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
def gpu_names() -> dict[int, str]:
    """{index: name} of the GPUs torch can see (empty without CUDA or without torch)."""
    try:
        import torch
        if torch.cuda.is_available():
            return {i: torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())}
    except Exception:   # no torch, or a broken CUDA install: the CPU is still there
        pass
    return {}


def gpus() -> tuple[int, ...]:
    """The GPU indices the runner assigns runs to ($MSQ_GPUS, $CUDA_VISIBLE_DEVICES or nvidia-smi), else
    the ones torch sees: the launch form offers what the queue can actually hand out."""
    from msq.runs.gpus import visible_gpus
    return visible_gpus() or tuple(gpu_names())


def devices() -> list[tuple[str, str]]:
    """[(device, label)]: the CPU, "any free GPU" and each GPU, when there are GPUs."""
    out = [("cpu", f"cpu ({os.cpu_count()} cores)")]
    found = gpus()
    if found:
        names = gpu_names()
        out.append(("cuda", f"any free GPU ({len(found)} here; the runner assigns one per process)"))
        out += [(f"cuda:{i}", f"cuda:{i}" + (f" — {names[i]}" if i in names else "")) for i in found]
    return out


# -- multi-bit models for the what-if mixer ----------------------------------------------------------
class LoadedMultiBit:
    """A multi-bit run's model rebuilt from its checkpoint, with a lock (one cached model serves every
    browser session, and a mix is applied to the model while it runs), the time one evaluation of the
    whole validation split takes, and the run's uniform widths evaluated once per sample count."""

    def __init__(self, run, load_seconds: float) -> None:
        self.run, self.load_seconds = run, load_seconds
        self.layers = run.layers               # base widths: every searched layer at the widest trained width
        self.lock = threading.Lock()
        self.n_val = len(run.data.val)
        widest = max(run.widths["trained"])
        self._uniform: dict[int, dict] = {self.n_val: {widest: self.evaluate(widest)}}
        self.full_seconds = self._uniform[self.n_val][widest]["seconds"]

    def evaluate(self, mix, samples: int | None = None) -> dict:
        with self.lock:
            return self.run.evaluate(mix, max_samples=samples if samples and samples < self.n_val else None)

    def has_uniform(self, samples: int) -> bool:
        return len(self._uniform.get(samples, {})) == len(self.run.widths["trained"] + self.run.widths["unseen"])

    def uniform(self, samples: int) -> dict:
        """{b: evaluation} at every trained and unseen width, on the first ``samples`` validation images."""
        points = self._uniform.setdefault(samples, {})
        for b in sorted(self.run.widths["trained"] + self.run.widths["unseen"]):
            if b not in points:
                points[b] = self.evaluate(b, samples)
        return points


@st.cache_resource(show_spinner="Loading the multi-bit model from its checkpoint…", max_entries=4)
def _multibit_model(run_dir: str, checkpoint_mtime_ns: int) -> LoadedMultiBit:
    import torch

    from msq.methods.multibit import load_multibit_run
    # half the cores at most: training workers share this machine, and OpenMP threads that contend with
    # them turn a 10 ms evaluation into half a second (measured on 2 cores with a worker running)
    torch.set_num_threads(max(1, (os.cpu_count() or 2) // 2))
    started = time.perf_counter()
    run = load_multibit_run(run_dir)
    return LoadedMultiBit(run, time.perf_counter() - started)


def multibit_model(run_id: str) -> LoadedMultiBit:
    """The run's model, loaded once per checkpoint (a new epoch's checkpoint loads again). Raises
    ConfigError when the run folder has no checkpoint yet or the run is not a multi-bit run."""
    from msq.errors import ConfigError
    path = store().run_dir(run_id) / "checkpoint.pt"
    try:
        mtime = path.stat().st_mtime_ns
    except OSError:
        raise ConfigError(f"no checkpoint at {path}: a multi-bit run writes one after each epoch; wait for its "
                          "first epoch, or resume it if it stopped before one") from None
    return _multibit_model(str(path.parent), mtime)


# -- live charts that keep zoom across refreshes -----------------------------------------------------
# st.plotly_chart remounts a chart whenever its data changes (its element id hashes the spec), which
# resets zoom on every live refresh. This small component keeps ONE iframe for a whole panel of charts
# (one plotly.js load, not one per chart) and redraws each chart in place with Plotly.react, so each
# figure's ``uirevision`` keeps the user's zoom and pan while new steps arrive. plotly.js comes from the
# installed plotly package (nothing is fetched from the network); the folder is written once.
PANEL_HTML = """<!doctype html><html><head><meta charset="utf-8"><meta name="color-scheme" content="light dark">
<script src="plotly.min.js"></script>
<style>
html, body { margin: 0; padding: 0; background: transparent; overflow: hidden; }
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
