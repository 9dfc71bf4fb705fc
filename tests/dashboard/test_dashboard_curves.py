"""The Curves view and the honest Compare: the pure builders against hand-written references, the reads
on a real store, and both pages under AppTest (selection from the URL, mixed models split, runs that
are not final flagged, the Pareto front over the references too)."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from apptest_pages import open_page
from dashboard.components import comparison, curve_data, curves
from dashboard.components.curves import unpacked
from msq.report import figures
from msq.runs import RunStore, RunWriter

pytestmark = pytest.mark.xdist_group("dashboard")


def test_smoothing_is_the_debiased_ema_and_skips_gaps():
    values = [1.0, None, 3.0, float("nan"), 5.0]
    w = 0.5
    # by hand: acc/norm over the finite values only, gaps stay gaps
    acc, norm, expected = 0.0, 0.0, []
    for v in (1.0, 3.0, 5.0):
        acc, norm = w * acc + (1 - w) * v, w * norm + (1 - w)
        expected.append(acc / norm)
    out = curves.smooth(values, w)
    assert out[[0, 2, 4]].tolist() == pytest.approx(expected, abs=1e-12) and math.isnan(out[1]) and math.isnan(out[3])
    # the vectorised blocks against the plain recurrence on a long series, from no smoothing to very smooth
    long = np.random.default_rng(0).normal(size=3000).tolist()
    for weight in (0.01, 0.6, 0.99):
        acc, norm, reference = 0.0, 0.0, []
        for v in long:
            acc, norm = weight * acc + (1 - weight) * v, weight * norm + (1 - weight)
            reference.append(acc / norm)
        assert curves.smooth(long, weight) == pytest.approx(reference, abs=1e-12)
    assert curves.smooth([2.0, 4.0], 0.0).tolist() == [2.0, 4.0]
    with pytest.raises(ValueError, match=r"smoothing weight = 1.0 is invalid: allowed 0 <= weight < 1"):
        curves.smooth([1.0], 1.0)


def test_run_colours_stay_with_the_run_whatever_else_is_chosen():
    ids = [f"20260101-0000{i:02d}-abcdef" for i in range(8)]
    alone = {i: curves.run_colors([i])[i] for i in ids}
    together = curves.run_colors(ids)
    assert len(set(together.values())) == len(ids)                 # distinct within one selection
    newest = ids[-1]
    assert curves.run_colors([ids[0], newest])[ids[0]] == alone[ids[0]] == together[ids[0]]


def test_training_time_interpolates_epoch_timings_and_extends_at_the_last_pace():
    t = curves.training_time([0, 5, 10, 15, 20], [(10, 4.0), (20, 6.0)])
    assert t.tolist() == [0.0, 2.0, 4.0, 7.0, 10.0]
    assert curves.training_time([25], [(10, 4.0), (20, 6.0)]).tolist() == [13.0]
    assert np.isnan(curves.training_time([3], [])).all()


def _run(i, values, **extra):
    return {"id": f"r{i}", "label": f"run {i}", "color": curves.RUN_PALETTE[i], "step": list(range(len(values))),
            "epoch": [0] * len(values), "value": values, **extra}


def test_curve_figure_overlays_runs_with_raw_behind_smoothed_and_a_log_axis():
    noisy = [4.0 / (1 + i) + (0.3 if i % 2 else 0.0) for i in range(24)]
    runs = [_run(0, noisy), _run(1, [3.0, 0.0, -1.0] + [0.25] * 21)]
    raw = curves.curve_figure("loss", runs)
    assert [t.name for t in raw.data] == ["run 0", "run 1"] and all(t.showlegend is not False for t in raw.data)
    assert "step %{customdata[0]:.0f} · epoch %{customdata[1]:.0f}" in raw.data[0].hovertemplate
    smoothed = curves.curve_figure("loss", runs, smoothing=0.6)
    assert len(smoothed.data) == 4
    faint, line = smoothed.data[0], smoothed.data[1]
    assert faint.opacity == 0.25 and faint.hoverinfo == "skip" and faint.legendgroup == line.legendgroup == "r0"
    assert unpacked(line.y) == pytest.approx(curves.smooth(noisy, 0.6), rel=1e-6)      # float32 on the wire
    assert unpacked(faint.y) == pytest.approx(noisy, rel=1e-6)
    assert "raw %{customdata[2]:.4g}" in line.hovertemplate
    log = curves.curve_figure("loss", runs, log_y=True)
    assert log.layout.yaxis.type == "log"
    assert np.isnan(unpacked(log.data[1].y)[[1, 2]]).all()                   # 0 and −1 cannot sit on a log axis …
    assert "2 values ≤ 0 left out of the log axis" in log.layout.annotations[0].text   # … and it says so
    # λ is set, not measured: never smoothed, drawn as steps; a 4-point per-epoch series stays as measured
    lam = curves.curve_figure("lam", [_run(0, [8.0] * 10 + [64.0] * 14)], smoothing=0.9)
    assert len(lam.data) == 1 and unpacked(lam.data[0].y).tolist() == [8.0] * 10 + [64.0] * 14
    assert lam.data[0].line.shape == "hv"
    per_epoch = curves.curve_figure("val_acc", [_run(0, [70.0, 80.0, 75.0, 85.0])], smoothing=0.9)
    assert len(per_epoch.data) == 1 and unpacked(per_epoch.data[0].y).tolist() == [70.0, 80.0, 75.0, 85.0]
    assert per_epoch.data[0].mode == "lines+markers" and "smoothed" not in per_epoch.data[0].hovertemplate
    timed = curves.curve_figure("loss", [_run(0, [1.0, 2.0], time=[0.0, 1.5])], x="time")
    assert unpacked(timed.data[0].x).tolist() == [0.0, 1.5] and timed.layout.xaxis.title.text == "training time (s)"
    long = curves.curve_figure("loss", [_run(0, [1.0] * 9000)])           # drawn thinned, first and last kept
    steps = unpacked(long.data[0].customdata)[:, 0]
    assert len(steps) == curves.DRAW_POINTS and steps[0] == 0 and steps[-1] == 8999
    with pytest.raises(ValueError, match="x = 'wall' is invalid: allowed step, epoch, time"):
        curves.curve_figure("loss", runs, x="wall")


def test_budget_and_progress_texts():
    cfg = {"train": {"pretrain_epochs": 0, "search_epochs": 30, "finetune_epochs": 6}}
    assert comparison.budget_text(cfg) == "36 epochs (30 search + 6 finetune)"
    assert comparison.progress_text({"status": "running", "epoch": 1}, cfg) == "not final: running, epoch 1 of 36"
    assert comparison.progress_text({"status": "completed"}, cfg) == ""
    assert comparison.budget_text(None) == "budget unknown"


def test_pareto_front_runs_over_the_references_and_skips_runs_that_are_not_final():
    points = [{"label": "msq a", "method": "msq", "compression": 6.0, "accuracy": 80.0, "avg_bits": 5},
              {"label": "msq b", "method": "msq", "compression": 9.0, "accuracy": 70.0, "avg_bits": 3},
              {"label": "ref 4-bit", "method": "uniform", "compression": 8.0, "accuracy": 85.0, "avg_bits": 4},
              {"label": "live", "method": "msq", "compression": 12.0, "accuracy": 90.0, "avg_bits": 2,
               "final": False, "note": "not final: running, epoch 1 of 4"}]
    spec = figures.accuracy_vs_compression(points)
    [front] = [t for t in spec["data"] if t.get("name") == "Pareto front"]
    # msq a (6×, 80%) is beaten by the 4-bit reference (8×, 85%); the live run is not a result yet
    assert list(zip(front["x"], front["y"])) == [(8.0, 85.0), (9.0, 70.0)]
    [msq] = [t for t in spec["data"] if t.get("name") == "msq" and t.get("showlegend") is False]
    assert msq["text"][-1] == "live (not final)" and msq["marker"]["opacity"] == [1.0, 1.0, 0.35]
    assert msq["customdata"][-1][4] == "not final: running, epoch 1 of 4"
    [bar] = [t for t in spec["data"] if t.get("marker", {}).get("showscale")]
    assert bar["marker"]["colorbar"]["ticktext"][-1] == "8+"


# -- on a real store ---------------------------------------------------------------------------
def write_run(store: RunStore, name: str, model: str, dataset: str, steps: int, status: str = "completed",
              method: str = "msq", lam: float = 8.0) -> str:
    """A run written the way a worker writes it (RunWriter): step scalars, epoch timings, LSB density."""
    config = {"method": method, "model": model, "data": {"name": dataset}, "reg": {"lam": lam},
              "train": {"pretrain_epochs": 1, "search_epochs": 2, "finetune_epochs": 1}}
    run_id = store.create_run(config, name=name, status="running" if status == "completed" else status)
    store.set_layers(run_id, [{"idx": i, "fqn": f"conv{i}", "params": 100, "bits": 8} for i in range(3)])
    writer = RunWriter(store, run_id, flush_every=3600)
    for step in range(1, steps + 1):
        epoch = (step - 1) // 10
        writer.add_scalars(step, epoch, {"loss": 2.0 / step, "lam": lam})
        writer.add_vectors(step, epoch, {"lsb_density": [0.5 - 0.01 * step, 0.4, 0.3]})
        if step % 10 == 0:
            writer.add_scalars(step, epoch + 1, {"val_acc": 50.0 + step, "epoch_seconds": 2.0,
                                                 "compression": 4.0 + step / 10, "avg_bits": 8 - step / 10})
    writer.flush(strict=True)
    if status == "completed":
        writer.finish("completed", {"final_acc": 50.0 + steps, "compression": 4.0 + steps / 10,
                                    "average_bits": 8 - steps / 10}, None)
    return run_id


@pytest.fixture
def mixed_store(tmp_path):
    store = RunStore(tmp_path / "home")
    ids = {"a": write_run(store, "tiny a", "tinycnn", "digits", 30),
           "b": write_run(store, "tiny b", "tinycnn", "digits", 40, lam=32.0),
           "ref": write_run(store, "tiny 4-bit", "tinycnn", "digits", 40, method="uniform"),
           "lenet": write_run(store, "lenet", "lenet5", "mnist5k", 20),
           "live": write_run(store, "tiny live", "tinycnn", "digits", 10, status="stopped")}
    return {"home": tmp_path / "home", "store": store, "ids": ids}


def test_read_curves_reads_each_run_and_one_layer_with_training_time(mixed_store):
    store, ids = mixed_store["store"], mixed_store["ids"]
    chosen = [ids["a"], ids["b"]]
    assert curve_data.metric_choices(store, chosen)[:4] == ["loss", "val_acc", "avg_bits", "lam"]
    assert curve_data.layer_choices(store, chosen) == ["conv0", "conv1", "conv2"]
    series = curve_data.read_curves(store, chosen, ["loss"], layer="conv0", layer_metrics=["lsb_density"])
    loss_a, loss_b = series["loss"]
    assert loss_a["step"] == list(range(1, 31)) and loss_a["value"][-1] == pytest.approx(2.0 / 30)
    assert loss_a["time"][9] == pytest.approx(2.0) and loss_a["time"][29] == pytest.approx(6.0)
    assert loss_a["color"] == curves.run_colors(chosen)[ids["a"]] != loss_b["color"]
    density = series["lsb_density@conv0"][1]
    assert density["value"][:2] == pytest.approx([0.49, 0.48]) and len(density["step"]) == 40
    thin = curve_data.read_curves(store, chosen, ["loss"], max_points=7)
    assert len(thin["loss"][1]["step"]) == 7 and thin["loss"][1]["step"][-1] == 40   # the latest step kept


# -- the pages ----------------------------------------------------------------------------------
@pytest.fixture
def mixed_app(mixed_store, monkeypatch):
    from streamlit.testing.v1 import AppTest

    from conftest import APP
    monkeypatch.setenv("MSQ_HOME", str(mixed_store["home"]))
    return AppTest.from_file(APP, default_timeout=60)


def panel_figures(at) -> dict:
    [component] = at.get("component_instance")
    return {item["key"]: item["figure"] for item in json.loads(json.loads(component.proto.json_args)["panel"])}


def test_curves_page_opens_the_urls_selection_and_overlays_the_runs(mixed_app, mixed_store):
    ids = mixed_store["ids"]
    at = open_page(mixed_app, "curves", compare=f"{ids['a']},{ids['b']}")
    assert at.multiselect(key="curves_pick").value == [ids["a"], ids["b"]]
    figs = panel_figures(at)
    assert list(figs) == ["loss", "val_acc", "avg_bits", "lam"]
    assert [t["name"] for t in figs["loss"]["data"] if t.get("showlegend") is not False] == \
        [f"tiny a · {ids['a'][-6:]}", f"tiny b · {ids['b'][-6:]}"]
    assert not at.warning                                           # one model, one dataset: nothing to flag
    at.toggle(key="curves_log").set_value(True).run()
    assert panel_figures(at)["loss"]["layout"]["yaxis"]["type"] == "log"
    at.selectbox(key="curves_layer").set_value("conv0").run()
    assert "lsb_density@conv0" in panel_figures(at)
    at.multiselect(key="curves_pick").select(ids["ref"]).run()
    assert at.query_params["compare"] == f"{ids['a']},{ids['b']},{ids['ref']}"


def test_curves_page_flags_a_mixed_model_selection_and_splits_it(mixed_app, mixed_store):
    ids = mixed_store["ids"]
    at = open_page(mixed_app, "curves", compare=f"{ids['a']},{ids['lenet']}")
    [warning] = at.warning
    assert "different models or datasets" in warning.value and "**lenet5 on mnist5k**: 1 run" in warning.value
    at.selectbox(key="curves_group").set_value("lenet5 on mnist5k").run()
    loss = panel_figures(at)["loss"]["data"]
    assert {t["name"] for t in loss} == {f"lenet · {ids['lenet'][-6:]}"} and len(loss) == 2   # raw + smoothed


def test_compare_page_draws_one_plane_per_model_and_flags_runs_that_are_not_final(mixed_app, mixed_store):
    ids = mixed_store["ids"]
    at = open_page(mixed_app, "compare", compare=f"{ids['a']},{ids['b']},{ids['lenet']},{ids['live']}")
    planes = [c for c in at.get("plotly_chart") if "Accuracy vs compression" in json.loads(c.proto.spec)["layout"]
              ["title"]["text"]]
    titles = [json.loads(c.proto.spec)["layout"]["title"]["text"] for c in planes]
    assert titles == ["Accuracy vs compression — tinycnn on digits", "Accuracy vs compression — lenet5 on mnist5k"]
    tiny = json.loads(planes[0].proto.spec)
    texts = [t for trace in tiny["data"] for t in trace.get("text") or []]
    assert "tiny live (not final)" in texts and "tiny 4-bit" in texts   # the reference of the same model only
    assert not any("lenet" in t for t in texts)
    notes = [row[4] for trace in tiny["data"] for row in trace.get("customdata") or []]
    assert "4 epochs (1 pretrain + 2 search + 1 finetune) · not final: stopped, epoch 1 of 4" in notes


def test_export_page_never_shows_another_run_for_an_unknown_id(mixed_app):
    at = open_page(mixed_app, "export", run="20991231-000000-abcdef")
    [error] = at.error
    assert "No run '20991231-000000-abcdef' in this store" in error.value
    assert at.selectbox(key="export_missing_pick").value is None and not at.get("download_button")


def test_queue_positions_follow_the_runners_order_per_device():
    from dashboard.components.queue import queue_positions
    rows = [{"id": "g", "status": "queued", "device": "cuda", "created": 5.0},
            {"id": "c2", "status": "queued", "device": "cpu", "created": 4.0},
            {"id": "c1", "status": "queued", "device": "cpu", "created": 3.0},
            {"id": "run", "status": "running", "device": "cpu", "created": 1.0}]
    places = queue_positions(rows, limit=lambda device: 2)
    assert [places[i]["position"] for i in ("c1", "c2", "g")] == [1, 2, 1]
    assert places["c1"]["text"] == ("#1 in the cpu queue: 0 runs ahead, 1 running (2 at a time on cpu); "
                                    "starts at the next queue check")
    assert places["c2"]["text"].endswith("starts when a slot frees") and places["g"]["device"] == "gpu"


def test_why_table_shows_every_trace_with_its_interval_and_no_ratio_to_a_negative_mean():
    from dashboard.components.why import layer_rows, why_display
    layers = [{"fqn": "a", "bits": 8, "params": 10}, {"fqn": "b", "bits": 8, "params": 10}]
    events = [{"kind": "hessian", "step": 1, "epoch": 1, "payload": {"mean_sensitivity": 2e-3}}]
    vectors = {"sensitivity": {"values": [3e-3, -1e-3]}, "sensitivity_se": {"values": [1e-3, 2e-3]}}
    table = why_display(layer_rows(layers, vectors, events, {"method": "msq"}))
    assert table["Tr(H)/N"].tolist() == ["3.00e-03 ± 1.0e-03", "-1.00e-03 ± 2.0e-03"]
    assert table["× mean"].tolist() == ["1.50 ± 0.50", "-0.50 ± 1.00"]
    assert "insensitive (-0.50 ± 1.00× the mean)" in table["why"]["b"]   # the sentence carries the interval too
    no_se = why_display(layer_rows(layers, {"sensitivity": {"values": [3e-3, -1e-3]}}, events, {"method": "msq"}))
    assert no_se["Tr(H)/N"].tolist() == ["3.00e-03", "< 0 (noise? no std error stored)"]
    negative = [{**events[0], "payload": {"mean_sensitivity": -1e-4}}]
    rows = layer_rows(layers, vectors, negative, {"method": "msq"})
    assert why_display(rows)["× mean"].tolist() == ["— (mean ≤ 0)"] * 2 and rows[0]["sensitivity_vs_mean"] is None


def test_stops_and_resumes_are_marked_on_the_curves_in_the_runs_colour(mixed_store):
    store, run_id = mixed_store["store"], mixed_store["ids"]["a"]
    writer = RunWriter(store, run_id, flush_every=3600)
    writer.add_event(20, 1, "stop", {"reason": "stopped from the dashboard"})
    writer.add_event(10, 0, "resume", {"checkpoint_step": 10})
    writer.flush(strict=True)
    [run] = curve_data.read_curves(store, [run_id], ["loss"])["loss"]
    assert [(m["kind"], m["step"], m["time"]) for m in run["marks"]] == [("stop", 20, 4.0), ("resume", 10, 2.0)]
    fig = curves.curve_figure("loss", [run], x="time")
    assert [s.x0 for s in fig.layout.shapes] == [4.0, 2.0] and fig.layout.shapes[0].line.color == run["color"]
    assert [a.text for a in fig.layout.annotations] == ["stopped", "resumed"]


def test_multibit_tab_shows_a_multibit_run_when_the_last_opened_run_is_msq(app, seeded):
    app.run()
    app.session_state["run_id"] = seeded["ids"]["msq"]        # opened on the Run page, not in this URL
    app.switch_page("app_pages/multibit.py").run()
    assert not app.exception and not app.error
    assert app.session_state["run_id"] in (seeded["ids"]["multibit"], seeded["ids"]["multibit_full"])


def test_launch_checks_catch_a_plain_words_model_and_more_cpu_processes_than_cores(tmp_path):
    from dashboard.components import launch_form as lf
    problem = lf.check_paths({"model": "my resnet"}, tmp_path, models=["lenet5", "tinycnn"])["model"]
    assert problem.startswith("Model file and factory = 'my resnet' is not a model: write path/to/file.py:make_model")
    assert lf.check_paths({"model": "tv:resnet18"}, tmp_path, models=["lenet5"]) == {}
    too_many = lf.check_devices({"train.device": "cpu", "train.nproc": 64}, (), cpu_cores=2)["train.nproc"]
    assert too_many.startswith("Processes per run = 64 is more than this machine's 2 CPU cores") and "at most 2" in too_many
    assert lf.check_devices({"train.device": "cpu", "train.nproc": 2}, (), cpu_cores=2) == {}


def test_hessian_figures_carry_the_std_error_and_explain_a_step_whose_mean_is_negative():
    bars = figures.sensitivity_bars(["a", "b"], [3e-3, -1e-3], mean=1e-3, std_errors=[1e-3, 2e-3], bits=[8, 8])
    [trace] = [t for t in bars["data"] if t["type"] == "bar"]
    assert "± %{customdata[2]:.1e}" in trace["hovertemplate"] and [c[2] for c in trace["customdata"]] == [1e-3, 2e-3]
    heat = figures.relative_sensitivity_heatmap(["a", "b"], [46, 69], [[-2.8e-2, 1e-2], [3e-3, 2e-2]])
    assert heat["data"][0]["z"][0][0] is None                          # no ratio to a negative mean …
    assert [a["text"] for a in heat["layout"]["annotations"]] == ["mean -1.3e-02 ≤ 0: no ratio"]   # … and it says so
