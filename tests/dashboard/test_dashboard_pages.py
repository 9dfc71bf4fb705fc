"""Every dashboard page under AppTest against a real store seeded by real short runs: the launch form
makes the right config and a real run (or, on bad input, the field's error and nothing), the live
page shows a run's charts and its failures, and the other pages work on the same data."""
from __future__ import annotations

import csv
import io
import json
import os
import time

import pytest

from apptest_pages import open_page
from dashboard_seed import wait
from msq.runs import RunStore, reap
from msq.runs.procs import HOST, process_start_time

pytestmark = pytest.mark.xdist_group("dashboard")   # one worker seeds the store once


def texts(at, kind: str) -> list[str]:
    return [e.value for e in getattr(at, kind)]


def panel(at) -> list[str]:
    """The names of the charts in the run page's live chart panel, in order."""
    [component] = at.get("component_instance")
    return [item["key"] for item in json.loads(json.loads(component.proto.json_args)["panel"])]


# -- launch ---------------------------------------------------------------------------------------
def fill_launch_form(at, **numbers):
    at.selectbox(key="f:model_choice").set_value("tinycnn")
    at.selectbox(key="f:dataset_choice").set_value("digits")
    for key, value in {"train.pretrain_epochs": 1, "train.search_epochs": 2, "train.finetune_epochs": 1,
                       "train.threads": 1, **numbers}.items():
        at.number_input(key=f"f:{key}").set_value(value)
    return at.run()


def test_launch_form_queues_a_real_run_with_the_configured_values(fresh_app):
    at = open_page(fresh_app, "launch")
    fill_launch_form(at, **{"prune.threshold": 0.2, "train.seed": 7})
    at.select_slider(key="f:reg.lam").set_value(64.0)
    at.toggle(key="f:hessian.enabled").set_value(False)
    at.text_input(key="f:name").input("from the form")
    at.run()
    at.button(key="launch_button").click().run()
    assert not at.exception and not texts(at, "error")
    store = RunStore(fresh_app_home(at))
    [row] = store.list_runs()
    assert row["status"] in ("queued", "running") and row["name"] == "from the form"
    config = store.run(row["id"])["config"]
    assert (config["method"], config["model"], config["data"]["name"]) == ("msq", "tinycnn", "digits")
    assert config["reg"]["lam"] == 64.0 and config["prune"]["threshold"] == 0.2
    assert config["hessian"]["enabled"] is False and config["train"]["seed"] == 7
    assert [config["train"][k] for k in ("pretrain_epochs", "search_epochs", "finetune_epochs")] == [1, 2, 1]
    assert (store.home / row["id"] / "config.json").is_file()
    assert at.query_params["run"] == row["id"]            # a single launch opens its live page


def test_lambda_sweep_queues_one_run_per_lambda(fresh_app):
    at = open_page(fresh_app, "launch")
    fill_launch_form(at)
    at.toggle(key="f:sweep").set_value(True).run()
    at.select_slider(key="f:sweep_range").set_value((4.0, 400.0))
    at.number_input(key="f:sweep_count").set_value(3)
    at.run()
    at.button(key="launch_button").click().run()
    assert not at.exception and not texts(at, "error")
    rows = RunStore(fresh_app_home(at)).list_runs()
    assert sorted(r["lam"] for r in rows) == [4.0, 40.0, 400.0]
    assert sorted(r["status"] for r in rows) == ["queued", "queued", "running"]   # one CPU slot
    assert all("λ=" in r["name"] for r in rows)


def test_invalid_fields_show_their_errors_and_launch_nothing(fresh_app):
    at = open_page(fresh_app, "launch")
    fill_launch_form(at, **{"train.search_epochs": -1, "prune.threshold": 1.5, "train.batch_size": 0})
    at.button(key="launch_button").click().run()
    errors = " ".join(texts(at, "error"))
    assert "Search epochs = -1 is invalid: allowed an integer in [0, 100000]" in errors
    assert "α — prune threshold = 1.5 is invalid" in errors and "Batch size = 0 is invalid" in errors
    assert ("Nothing was launched: 3 field(s) need fixing — **α — prune threshold**; **Search epochs**; "
            "**Batch size**") in errors
    assert RunStore(fresh_app_home(at)).list_runs() == []


def field_errors(at) -> dict[str, str]:
    """{config key: the error shown for it} of every field error on the launch page (the summary and a
    runner error carry no config key)."""
    import re
    out = {}
    for text in texts(at, "error"):
        keys = re.findall(r":small\[config key `([\w.]+)`\]", text)
        if keys:
            out[keys[0]] = text
    return out


def assert_named_by_label(errors: dict[str, str], bad: dict) -> None:
    from dashboard.components.launch_form import LABELS
    assert set(errors) == set(bad)
    for key, text in errors.items():
        value = bad[key]
        assert text.startswith(f"{LABELS[key]} = {value!r}"), text          # the label on screen leads
        assert not text.startswith(key) and not text.startswith(f"run.{key}"), text   # the raw key does not


MSQ_BAD = {"train.pretrain_epochs": -1, "train.search_epochs": -1, "train.finetune_epochs": -2,
           "prune.threshold": 1.5, "prune.every": 0, "prune.min_bits": 0, "hessian.probes": 0, "train.nproc": 0,
           "train.seed": -1, "train.batch_size": 0, "train.lr": -1.0, "train.log_every": 0, "train.threads": -1}


def test_every_bad_number_of_the_form_is_named_by_its_label_with_the_config_key_in_small_print(fresh_app):
    at = open_page(fresh_app, "launch")
    fill_launch_form(at, **MSQ_BAD)
    at.toggle(key="f:use_target").set_value(True).run()
    at.number_input(key="f:prune.target_avg_bits").set_value(0.5)
    at.text_input(key="f:name").input("x" * 201)
    at.run()
    at.button(key="launch_button").click().run()
    assert not at.exception
    errors = field_errors(at)
    assert_named_by_label(errors, {**MSQ_BAD, "prune.target_avg_bits": 0.5, "name": "x" * 201})
    assert errors["train.batch_size"].startswith("Batch size = 0 is invalid: allowed an integer in [1, 65536]")
    assert errors["train.batch_size"].endswith(":small[config key `train.batch_size`]")
    [summary] = [e for e in texts(at, "error") if e.startswith("Nothing was launched")]
    assert "**Batch size**" in summary and "train.batch_size" not in summary
    assert RunStore(fresh_app_home(at)).list_runs() == []


@pytest.mark.parametrize("method, widgets, bad", [
    ("uniform", {"uniform_bits": 0}, {"uniform_bits": 0}),
    ("bsq", {"bsq.requant_every": 0}, {"bsq.requant_every": 0}),
    ("hawq", {"prune.target_avg_bits": 40.0}, {"prune.target_avg_bits": 40.0}),
    ("multibit", {"multibit.reselect_every": 0, "multibit.bits": "2, x"},
     {"multibit.reselect_every": 0, "multibit.bits": "2, x"}),
])
def test_each_methods_own_fields_are_named_by_their_labels(fresh_app, method, widgets, bad):
    at = open_page(fresh_app, "launch")
    fill_launch_form(at)
    at.segmented_control(key="f:method").set_value(method).run()
    if method == "multibit":
        at.slider(key="f:multibit.coreset_fraction").set_value(0.5).run()   # re-selection is on below 1.0
    for key, value in widgets.items():
        widget = at.text_input(key=f"f:{key}") if isinstance(value, str) else at.number_input(key=f"f:{key}")
        widget.input(value) if isinstance(value, str) else widget.set_value(value)
    at.run()
    at.button(key="launch_button").click().run()
    assert not at.exception
    assert_named_by_label(field_errors(at), bad)
    assert RunStore(fresh_app_home(at)).list_runs() == []


def test_the_form_draws_each_field_with_the_label_its_errors_use(fresh_app):
    from dashboard.components.launch_form import LABELS
    at = open_page(fresh_app, "launch")
    fields = {"model_path": "model", "dataset_choice": "data.name"}   # widgets whose key is not the config key
    seen = {}
    at.selectbox(key="f:model_choice").set_value("your own model file…").run()
    at.selectbox(key="f:dataset_choice").set_value("cifar10").run()      # not bundled: a data root and download
    for method in ("msq", "uniform", "bsq", "multibit", "hawq"):
        at.segmented_control(key="f:method").set_value(method).run()
        for kind in ("number_input", "selectbox", "toggle", "slider", "select_slider", "text_input",
                     "segmented_control"):
            for widget in getattr(at, kind):
                name = (widget.key or "")[2:] if (widget.key or "").startswith("f:") else None
                key = fields.get(name, name)
                if key in LABELS:
                    seen[key] = widget.label
    assert not at.exception
    assert all(seen[key] == LABELS[key] for key in seen), {k: v for k, v in seen.items() if v != LABELS[k]}
    assert set(seen) == set(LABELS)                  # every labelled field is on the form


def test_a_missing_model_file_is_explained_and_nothing_launches(fresh_app):
    at = open_page(fresh_app, "launch")
    fill_launch_form(at)
    at.selectbox(key="f:model_choice").set_value("your own model file…").run()
    at.text_input(key="f:model_path").input("nowhere/net.py:make").run()
    at.button(key="launch_button").click().run()
    assert any(e.startswith("Model file and factory = 'nowhere/net.py:make': the file 'nowhere/net.py' does not "
                            "exist") for e in texts(at, "error"))
    assert RunStore(fresh_app_home(at)).list_runs() == []


def fresh_app_home(at) -> str:
    return os.environ["MSQ_HOME"]


# -- run (live) ----------------------------------------------------------------------------------
def test_run_page_shows_progress_charts_and_why_each_layer_got_its_bits(app, seeded):
    at = open_page(app, "run", run=seeded["ids"]["msq_hard"])
    assert texts(at, "header") == ["msq λ=500"]
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Compression"].endswith("×") and metrics["Step"] == "92"
    assert [p.proto.text.split("**")[1] for p in at.get("progress")] == ["pretrain", "search", "finetune"]
    assert panel(at) == ["bits_heatmap", "bits_bars", "density_heatmap", "layer_lines", "sensitivity_bars",
                         "sensitivity_heatmap", "loss", "accuracy", "trajectory", "lam"]
    [table] = at.table
    why = table.value
    assert list(why.index) == ["conv1", "conv2", "fc"] and "why" in why.columns
    assert any("two LSBs at once" in text for text in why["why"])


def test_failed_run_shows_its_reason_and_the_worker_log(app, seeded):
    at = open_page(app, "run", run=seeded["ids"]["killed"])
    errors = " ".join(texts(at, "error"))
    assert "This run failed" in errors and "died without recording an end" in errors
    assert any("worker pid" in c.value for c in at.code)          # the log tail
    assert {"bits_heatmap", "density_heatmap", "loss"} <= set(panel(at))   # its stored metrics are still drawn


def test_deleted_folder_and_invalid_config_are_explained_and_the_page_works(app, seeded):
    at = open_page(app, "run", run=seeded["ids"]["no_folder"])
    assert any("is missing (deleted?)" in w for w in texts(at, "warning"))
    assert {"bits_heatmap", "density_heatmap", "loss", "trajectory"} <= set(panel(at))
    at.query_params["run"] = seeded["ids"]["bad_config"]
    at.run()
    assert not at.exception
    assert any("the stored config is invalid: reg.lam = -5.0" in w for w in texts(at, "warning"))
    at.query_params["run"] = seeded["ids"]["corrupt_json"]           # config and summary not even JSON
    at.run()
    assert not at.exception
    assert any("is not valid JSON" in w for w in texts(at, "warning"))
    assert {"bits_heatmap", "density_heatmap", "loss"} <= set(panel(at))


@pytest.mark.parametrize("bad_id", ["20991231-000000-abcdef", "../../etc/passwd"])
def test_unknown_or_malformed_run_id_shows_a_clear_error(app, bad_id):
    at = open_page(app, "run", run=bad_id)
    assert any("Cannot show this run" in e and ("no run" in e or "invalid run id" in e) for e in texts(at, "error"))
    assert at.selectbox(key="run_picker").value is None          # and a picker to choose an existing one


def test_live_lambda_slider_sends_the_new_lambda_to_a_running_run(app, seeded, live_process):
    store = RunStore(seeded["home"])
    run_id = store.create_run({"method": "msq", "model": "tinycnn", "data": {"name": "digits"}, "reg": {"lam": 32.0}},
                              name="pretend running", status="running")
    store.update_run(run_id, pid=live_process.pid, pid_start=process_start_time(live_process.pid), host=HOST,
                     started=time.time(), heartbeat=time.time())
    try:
        at = open_page(app, "run", run=run_id)
        slider = at.select_slider(key=f"lamslider:{run_id}")
        assert not slider.disabled and slider.value == 32.0
        slider.set_value(64.0).run()
        assert [(c["key"], c["value"]) for c in store.controls(run_id)] == [("lam", 64.0)]
        stop = next(b for b in at.button if b.label == "Stop run")
        stop.click().run()      # a stop request that a background thread escalates: poll for it
        wait(lambda: any(c["key"] == "stop" for c in store.controls(run_id)), 10, "the stop control")
    finally:
        store.update_run(run_id, status="stopped", ended=time.time())
        reap(store)


# -- runs, compare, export, empty store ---------------------------------------------------------
def test_runs_page_lists_every_run_and_filters(app, seeded):
    at = open_page(app, "runs")
    [frame] = [d.value for d in at.dataframe]
    assert set(frame["id"]) >= set(seeded["ids"].values())       # the damaged records are listed too
    assert {"λ", "accuracy (%)", "compression (×)", "avg bits", "duration"} <= set(frame.columns)
    at.text_input(key="runs_search").input("uniform").run()
    [frame] = [d.value for d in at.dataframe]
    assert list(frame["id"]) == [seeded["ids"]["uniform"]]


def test_compare_page_draws_the_front_and_two_allocations(app, seeded):
    at = open_page(app, "compare")
    assert not texts(at, "error")
    assert len(at.get("plotly_chart")) == 5        # front, λ vs compression, λ vs accuracy, two allocations
    assert "Numbers" in [s.value for s in at.subheader]


def test_export_page_previews_and_offers_the_canonical_report(app, seeded):
    run_id = seeded["ids"]["msq"]
    at = open_page(app, "export", run=run_id)
    labels = {b.proto.label for b in at.get("download_button")}
    assert {"JSON", "CSV", "Markdown", "HTML report"} <= labels
    assert not any(label.startswith("Quick") for label in labels)      # one report: no dashboard-made copy
    from dashboard.components.report import export_files
    files = export_files(str(seeded["home"]), run_id, ("test",))
    canonical = json.loads(files["json"][3]())                 # what the JSON button renders on click
    assert canonical["run"]["id"] == run_id and list(canonical["layers"]) == ["conv1", "conv2", "fc"]
    rows = list(csv.DictReader(io.StringIO(files["csv"][3]().decode())))
    assert [r["fqn"] for r in rows] == ["conv1", "conv2", "fc"]
    assert [int(r["bits"]) for r in rows] == [l["bits"] for l in canonical["layers"].values()]
    [table] = [d.value for d in at.dataframe]                  # the preview is the same report
    assert list(table["layer"]) == list(canonical["layers"])
    assert list(table["bits"]) == [l["bits"] for l in canonical["layers"].values()]
    assert table["memory share"].sum() == pytest.approx(1.0)
    shown = {m.label: m.value for m in at.metric}
    assert shown["Average bits"] == f"{canonical['totals']['average_bits']:.2f}"
    assert shown["Compression"] == f"{canonical['totals']['compression']:.2f}×"


@pytest.mark.parametrize("run", ["msq", "uniform", "bsq", "multibit", "killed", "no_folder", "bad_config"])
def test_export_page_reports_every_method_and_every_stored_state(app, seeded, run):
    at = open_page(app, "export", run=seeded["ids"][run])
    assert not texts(at, "error")
    labels = {b.proto.label for b in at.get("download_button")}
    assert {"JSON", "CSV", "ONNX model", "Bit map (layer → bits)"} <= labels
    assert ("Packed checkpoint (.msq.pt)" in labels) == (run not in ("bsq", "multibit"))   # msq and uniform runs
    widths = [s for s in at.selectbox if s.key == "export_width"]
    assert [w.options for w in widths] == ([["2", "3", "4", "8"]] if run == "multibit" else [])


def test_export_page_explains_a_run_whose_record_is_damaged(app, seeded):
    at = open_page(app, "export", run=seeded["ids"]["corrupt_json"])
    [error] = texts(at, "error")
    assert "cannot be built" in error and "not valid JSON" in error
    assert not at.get("download_button")


def test_export_page_offers_the_onnx_model_the_checkpoint_figures_and_every_adapter(app, seeded):
    run_id = seeded["ids"]["msq"]
    at = open_page(app, "export", run=run_id)
    assert not texts(at, "error")
    labels = {b.proto.label for b in at.get("download_button")}
    assert {"ONNX model", "Packed checkpoint (.msq.pt)", "Figures (PNG zip)", "Figures (PDF zip)",
            "Bit map (layer → bits)", "NNCF config", "torchao config"} <= labels
    assert "HAWQ bit_config.py" not in labels            # HAWQ has no model for this run's tinycnn
    from dashboard.components.model_files import model_files
    from dashboard.components.report import adapter_files
    run = RunStore(seeded["home"]).run(run_id)
    files = model_files(str(seeded["home"]), run_id, ("test",), run)
    import onnxruntime as ort
    session = ort.InferenceSession(files["onnx"][3](), providers=["CPUExecutionProvider"])   # what the click gives
    assert session.get_inputs()[0].name == "input"
    from msq.report.checkpoint import read_quantized
    path = seeded["home"] / "downloaded.msq.pt"
    path.write_bytes(files["msq"][3]())
    assert [l["fqn"] for l in read_quantized(path)["layers"]] == ["conv1", "conv2", "fc"]
    nncf = json.loads(adapter_files(str(seeded["home"]), run_id, ("test",), run["model"])["nncf"][3]())
    assert nncf["compression"]["initializer"]["precision"]["type"] == "manual"


@pytest.mark.parametrize("page", ["runs", "launch", "run", "multibit", "compare", "curves", "export"])
def test_every_page_works_on_an_empty_store(fresh_app, page):
    at = open_page(fresh_app, page)
    if page != "launch":
        assert any("No runs yet" in i or "No multi-bit runs yet" in i for i in texts(at, "info"))
