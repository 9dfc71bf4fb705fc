"""Export: the bit-allocation report of a run (per-layer bits, weights, LSB density, sensitivity, totals)
and the model for a deployment toolchain: the ONNX model, the packed checkpoint, the report (JSON, CSV,
Markdown, HTML, PNG/PDF figures) and the toolchain adapters (bit map, HAWQ, NNCF, torchao)."""
from __future__ import annotations

import streamlit as st

from dashboard import resources
from dashboard.app_pages import ui
from dashboard.components import charts
from dashboard.components.model_files import model_files
from dashboard.components.report import (FIGURES, adapter_files, export_files, preview_report, preview_rows,
                                         report_version)
from dashboard.components.snapshot import parse_config, read_run_row
from msq.config import get_dotted
from msq.errors import RunStoreError
from msq.methods import find_method
from msq.report import figures, fmt
from msq.report.paths import file_name, run_stem

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
    row, row_error = read_run_row(store, run_id)
except RunStoreError as exc:
    st.error(str(exc))
    st.stop()
st.session_state["run_id"] = run_id

home = str(store.home)
version = report_version(store, row)
report, why_not = preview_report(home, run_id, version)
if report is None:
    st.error(f"The report of run `{run_id}` cannot be built: {why_not}. The other pages still show what is "
             "stored for it.", icon=":material/error:")
    st.stop()
config_error = row_error or parse_config(row)[1]
if config_error:
    st.warning(config_error, icon=":material/warning:")
if report["notes"]:
    st.info("\n\n".join(report["notes"]), icon=":material/info:")
totals = report["totals"]
final, float_acc = totals["final_acc"], totals["float_acc"]
m = st.columns(5)
m[0].metric("Accuracy", fmt.pct(final),
            delta=None if final is None or float_acc is None else f"{final - float_acc:+.2f} vs float")
m[1].metric("Compression", fmt.ratio(totals["compression"]), help="32-bit float weights / quantized weights")
m[2].metric("Average bits", fmt.bits(totals["average_bits"]))
m[3].metric("Quantized weights", fmt.count(totals["quantized_params"]))
m[4].metric("Weight memory", fmt.size(sum(l["params"] * l["storage_bits"] for l in report["layers"].values()) / 8))

stem = run_stem("msq-report", row)
st.markdown("**Download** — the canonical report of `msq.report` (the same as `python -m msq report "
            f"{run_id} --format …`), rendered when you click:")


def download_row(files: dict, primary: str = "", names: bool = False) -> None:
    """One row of download buttons; ``files`` is {key: (label, suffix or file name, mime, make)}."""
    for col, (key, (label, suffix, mime, make)) in zip(st.columns(len(files)), files.items()):
        col.download_button(label, data=make, file_name=suffix if names else file_name(stem, f".{suffix}"),
                            mime=mime, key=f"dl_{key}", width="stretch",
                            type="primary" if key == primary else "secondary", on_click="ignore")


def export_width() -> int | None:
    """The width to export a run at, for a method that trains several (multi-bit: one set of weights
    for every width in its ``widths_key``); None: the run's one allocation."""
    spec = find_method(report["run"]["method"])
    if spec is None or spec.one_allocation or not spec.widths_key:
        return None
    try:
        trained = sorted(get_dotted(report["config"], spec.widths_key))
    except (KeyError, TypeError):
        return None
    return st.selectbox(f"Width of the exported {spec.title} model", trained, index=len(trained) - 1,
                        key="export_width")


download_row(export_files(home, run_id, version), primary="json")
download_row(export_files(home, run_id, version, FIGURES))
st.markdown("**Deploy** — the model for onnxruntime (each quantized weight an INT2/INT4/INT8 initializer read "
            "through DequantizeLinear, quantized activations as Q/DQ pairs; `python -m msq export "
            f"{run_id} --format onnx`), the packed checkpoint for `msq.load_quantized`, and the "
            "per-layer widths in the form each toolchain reads:")
download_row(model_files(home, run_id, version, row, export_width()), primary="onnx", names=True)
download_row(adapter_files(home, run_id, version, report["run"]["model"] or ""))
st.caption("Compression and average bits count quantized weight layers only; biases and BatchNorm stay float.")
layers = [{"fqn": fqn, **layer} for fqn, layer in report["layers"].items()]
ui.chart(charts.to_figure(figures.bit_allocation_bars(layers), f"export-{run_id}"), key="export_bars")
st.dataframe(preview_rows(report), hide_index=True, width="stretch", placeholder="—", column_config={
    "LSB density": st.column_config.NumberColumn(format="%.3f"),
    "sensitivity": st.column_config.NumberColumn(format="%.2e"),
    "memory share": st.column_config.ProgressColumn(format="percent", min_value=0.0, max_value=1.0),
    "bit history": st.column_config.TextColumn(width="medium")})
