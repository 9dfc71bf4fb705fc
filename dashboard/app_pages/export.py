"""Export: the bit-allocation report of a run (per-layer bits, weights, LSB density, sensitivity, totals)
and the model for a deployment toolchain: the ONNX model, the packed checkpoint, the report (JSON, CSV,
Markdown, HTML, PNG/PDF figures) and the toolchain adapters (bit map, HAWQ, NNCF, torchao)."""
from __future__ import annotations

import streamlit as st

from dashboard import resources
from dashboard.app_pages import ui
from dashboard.components import charts
from dashboard.components.live import current_layers
from dashboard.components.model_files import model_files
from dashboard.components.report import FIGURES, adapter_files, build_report, export_files, file_stem, report_files
from dashboard.components.snapshot import read_snapshot
from msq.errors import RunStoreError
from msq.report import figures

st.title("Export the bit allocation")
store = resources.store()
rows = store.list_runs()
if not rows:
    ui.empty_state("No runs yet — launch one; its bit-allocation report can be downloaded here.")
    st.stop()

current = ui.selected_run_id()
if current and current not in {r["id"] for r in rows}:   # never a silent switch to another run's report
    st.error(f"No run {current!r} in this store (`{store.home}`): it was deleted, or the link is from another "
             "MSQ_HOME. Choose a run to export:", icon=":material/error:")
    ui.run_switcher(rows, None, key="export_missing_pick", label="Run", placeholder="choose a run")
    st.stop()
run_id = ui.pick_run(rows, key="export_pick", current=current, label="Run")
try:
    snap = read_snapshot(store, run_id, max_steps=2)
except RunStoreError as exc:
    st.error(str(exc))
    st.stop()
st.session_state["run_id"] = run_id

report = build_report(snap)
totals, acc = report["totals"], report["accuracy"]
if snap.status in ("running", "queued"):
    st.info("This run is still training: the report shows its widths now; download again when it ends.",
            icon=":material/hourglass_top:")
if snap.config_error:
    st.warning(snap.config_error, icon=":material/warning:")
m = st.columns(5)
m[0].metric("Accuracy", "—" if acc["final"] is None else f"{acc['final']:.2f}%",
            delta=None if acc["final"] is None or acc["float"] is None else
            f"{acc['final'] - acc['float']:+.2f} vs float")
m[1].metric("Compression", f"{totals['compression']:.2f}×", help="32-bit float weights / quantized weights")
m[2].metric("Average bits", f"{totals['average_bits']:.2f}")
m[3].metric("Quantized weights", f"{totals['quantized_params']:,}")
m[4].metric("Weight memory", f"{totals['quantized_params'] * totals['average_bits'] / 8 / 1024:.1f} KiB")

stem = file_stem(snap.run)
version = (snap.status, snap.run.get("ended"), (snap.latest.get("loss") or {}).get("step"))
st.markdown("**Download** — the canonical report of `msq.report` (the same as `python -m msq report "
            f"{snap.run['id']} --format …`), rendered when you click:")


def download_row(files: dict, primary: str = "", names: bool = False) -> None:
    """One row of download buttons; ``files`` is {key: (label, suffix or file name, mime, make)}."""
    for col, (key, (label, suffix, mime, make)) in zip(st.columns(len(files)), files.items()):
        col.download_button(label, data=make, file_name=suffix if names else f"{stem}.{suffix}", mime=mime,
                            key=f"dl_{key}", width="stretch", type="primary" if key == primary else "secondary",
                            on_click="ignore")


home = str(store.home)
download_row(export_files(home, run_id, version), primary="json")
download_row(export_files(home, run_id, version, FIGURES))
st.markdown("**Deploy** — the model for onnxruntime (each quantized weight an INT2/INT4/INT8 initializer read "
            "through DequantizeLinear, quantized activations as Q/DQ pairs; `python -m msq export "
            f"{snap.run['id']} --format onnx`), the packed checkpoint for `msq.load_quantized`, and the "
            "per-layer widths in the form each toolchain reads:")
width = None
if snap.run.get("method") == "multibit":
    trained = sorted((snap.config.get("multibit") or {}).get("bits") or [2, 3, 4, 8])
    width = st.selectbox("Width of the exported multi-bit model", trained, index=len(trained) - 1, key="export_width")
download_row(model_files(home, run_id, version, snap.run, width), primary="onnx", names=True)
download_row(adapter_files(home, run_id, version, snap.run.get("model") or ""))
with st.expander("Quick export (the dashboard's own table, if the canonical report fails for this run)"):
    files = report_files(report)
    c1, c2, _ = st.columns([1, 1, 3])
    c1.download_button("Quick JSON", data=files["json"][0], file_name=f"{stem}-quick.json", mime=files["json"][1],
                       key="dl_quick_json", on_click="ignore", width="stretch")
    c2.download_button("Quick CSV", data=files["csv"][0], file_name=f"{stem}-quick.csv", mime=files["csv"][1],
                       key="dl_quick_csv", on_click="ignore", width="stretch")
st.caption(report["note"] + ".")
ui.chart(charts.to_figure(figures.bit_allocation_bars(current_layers(snap)), f"export-{run_id}"), key="export_bars")
st.dataframe([{"layer": l["fqn"], "kind": l["kind"], "weights": l["params"], "bits": l["bits"],
               "LSB density": l["lsb_density"], "sensitivity": l["sensitivity"], "memory share": l["memory_share"],
               "why": l["why"]} for l in report["layers"]], hide_index=True, width="stretch", placeholder="—",
             column_config={
    "LSB density": st.column_config.NumberColumn(format="%.3f"),
    "sensitivity": st.column_config.NumberColumn(format="%.2e"),
    "memory share": st.column_config.ProgressColumn(format="percent", min_value=0.0, max_value=1.0),
    "why": st.column_config.TextColumn(width="large")})
with st.expander("Quick report (JSON)"):
    st.json(report, expanded=1)
