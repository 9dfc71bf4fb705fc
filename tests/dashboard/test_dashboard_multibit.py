"""Multi-bit runs in the dashboard, against the seeded store's real runs (a 50% coreset run with its first
and last layers fixed, its full-data baseline, a BSQ run): the per-width and coreset data and charts, the
time saved, the what-if mixer evaluating real checkpoints, and how multi-bit and BSQ runs show on the
other pages; plus the launch form's method-specific options and device choice."""
from __future__ import annotations

import json

import plotly.graph_objects as go
import pytest

from dashboard.components import mixer as mx
from dashboard.components import multibit as mb
from dashboard.components import multibit_charts as mc
from dashboard.components import launch_form as lf
from msq.report.figures import bit_color
from msq.runs import RunStore
from apptest_pages import open_page
from test_dashboard_pages import panel, texts

pytestmark = pytest.mark.xdist_group("dashboard")   # the seeded store is made once per worker

MIXER = "What-if mixer"


@pytest.fixture(scope="module")
def runs(seeded):
    """The full rows (config, summary) and epoch scalars of the seeded multi-bit runs."""
    store = RunStore(seeded["home"])
    out = {}
    for key in ("multibit", "multibit_full"):
        run_id = seeded["ids"][key]
        out[key] = {"row": store.run(run_id), "scalars": store.scalar_series(run_id), "events": store.events(run_id)}
    return out


def trace_names(fig: go.Figure) -> list[str]:
    return [t.name for t in fig.data if t.name]


# -- the run's data and charts (pure) -------------------------------------------------------------------
def test_widths_accuracies_and_coreset_selections_of_a_real_run(runs):
    run = runs["multibit"]
    row, scalars = run["row"], run["scalars"]
    assert mb.widths_of(row["config"], row["summary"], scalars) == ([2, 3, 4, 8], [5, 6, 7])
    assert mb.widths_of(row["config"], None, {}) == ([2, 3, 4, 8], [5, 6, 7])          # while it runs
    assert mb.widths_of(None, None, scalars) == ([2, 3, 4, 8], [5, 6, 7])               # config unreadable
    acc = mb.final_accuracy(row["summary"], scalars)
    assert sorted(acc) == [2, 3, 4, 5, 6, 7, 8]
    assert acc == pytest.approx({b: s["value"][-1] for b, s in mb.by_width(scalars, "acc").items()})
    assert mb.selection_epochs(run["events"]) == [2, 3]                  # re-selected every epoch of the phase
    assert mb.coreset_fraction(row["config"], row["summary"]) == 0.5
    sizes = mb.sizes_by_width(row["summary"])
    assert sizes[8]["avg_bits"] == 8.0 and sizes[2]["avg_bits"] > 2.0   # first/last layers stay at 8 bits


def test_per_width_charts_mark_unseen_widths_and_use_the_bit_colours(runs):
    run = runs["multibit"]
    scalars, events = run["scalars"], run["events"]
    fig = mc.accuracy_per_width(scalars, [2, 3, 4, 8], [5, 6, 7], events, float_acc=70.0)
    by_name = {t.name: t for t in fig.data}
    assert set(by_name) == {"2 bits", "3 bits", "4 bits", "8 bits", "5 bits (unseen)", "6 bits (unseen)",
                            "7 bits (unseen)"}
    assert by_name["5 bits (unseen)"].line.dash == "dash" and by_name["2 bits"].line.dash == "solid"
    assert by_name["2 bits"].line.color == bit_color(2) and list(by_name["8 bits"].x) == [2, 3]
    assert fig.layout.yaxis.title.text == "validation accuracy (%)" and fig.layout.xaxis.title.text == "epoch"
    end = mc.accuracy_vs_width(mb.final_accuracy(None, scalars), [2, 3, 4, 8], [5, 6, 7])
    unseen = next(t for t in end.data if t.name == "unseen width (never trained)")
    assert list(unseen.x) == [5, 6, 7] and unseen.marker.symbol == "circle-open"
    assert end.layout.xaxis.title.text == "weight width (bits)"


def test_coreset_charts_show_sizes_overlap_and_score_quantiles(runs):
    run = runs["multibit"]
    scalars, selections = run["scalars"], mb.selection_epochs(run["events"])
    sizes = mc.coreset_sizes(scalars, [2, 3, 4, 8], 0.5, selections)
    assert trace_names(sizes) == ["2 bits", "3 bits", "4 bits", "8 bits"]
    n = sizes.data[0].y[-1]
    assert f"every width: {n:,.0f} samples" in sizes.layout.title.text
    assert any(f"full training set ≈ {round(n / 0.5):,}" in a.text for a in sizes.layout.annotations)
    overlap = mc.coreset_overlap(scalars, [2, 3, 4, 8], 0.5, selections)
    kept = next(t for t in overlap.data if t.name.startswith("each width"))
    assert len(kept.x) == 4 and all(0 <= v <= 1 for v in kept.y)        # the second selection, every width
    assert any("random subsets: 0.33" in a.text for a in overlap.layout.annotations)   # f / (2 - f)
    scores = mc.score_quantiles(scalars, [2, 3, 4, 8], selections)
    bars = scores.data[0]
    assert list(bars.x) == ["2", "3", "4", "8"] and all(h >= 0 for h in bars.y)
    q = mb.scores_by_width(scalars)[2]
    assert bars.base[0] == pytest.approx(q["q10"]["value"][-1])
    assert bars.base[0] + bars.y[0] == pytest.approx(q["q90"]["value"][-1])
    times = mc.epoch_times(scalars)
    assert [t.name.split(" (")[0] for t in times.data] == ["coreset scoring", "training steps"]
    assert times.layout.yaxis.title.text == "seconds (wall clock)"


def test_time_saved_is_measured_against_a_full_data_run_or_clearly_estimated(runs):
    run, full = runs["multibit"], runs["multibit_full"]
    assert mb.full_data_baselines(run["row"], [full["row"], run["row"]]) == [full["row"]]
    measured = mb.time_saving(run["row"], run["scalars"], full["row"])
    timings = run["row"]["summary"]["multibit"]["timings"]
    assert measured["this"]["total"] == pytest.approx(timings["scoring_seconds"] + timings["training_seconds"])
    assert measured["full"]["training"] == pytest.approx(full["row"]["summary"]["multibit"]["timings"]
                                                         ["training_seconds"])
    assert not measured["full"]["estimated"] and measured["speedup"] == pytest.approx(
        measured["full"]["total"] / measured["this"]["total"])
    estimate = mb.time_saving(run["row"], run["scalars"])
    assert estimate["full"]["estimated"] and estimate["full"]["training"] == pytest.approx(
        timings["training_seconds"] / 0.5)
    assert "(estimate)" in mc.time_comparison(estimate).layout.title.text
    assert mb.time_saving(full["row"], full["scalars"]) is None           # a full-data run saves nothing
    points = mb.width_points(run["row"], run["row"]["summary"])
    assert [p["label"].split("@")[1] for p in points][:4] == ["2b", "3b", "4b", "8b"]
    assert all(p["method"] == "multibit" for p in points) and points[-1]["label"].endswith("(unseen)")


# -- the mixer's logic (pure) ----------------------------------------------------------------------------
LAYERS = [{"fqn": "conv1", "params": 72, "bits": 8, "fixed": True}, {"fqn": "conv2", "params": 1152, "bits": 8},
          {"fqn": "fc", "params": 2560, "bits": 8, "fixed": True}]


def test_quick_allocations_respect_fixed_layers_and_say_what_they_changed():
    assert mx.width_options([2, 3, 4, 8], [5, 6, 7]) == [2, 3, 4, 5, 6, 7, 8]
    assert mx.sample_options(359) == [100, 250, 359] and mx.sample_options(10_000)[-2:] == [5000, 10_000]
    assert mx.default_samples(10_000, 0.1) == 10_000                    # fast enough: every image
    assert mx.default_samples(10_000, 2.0) == 1000                      # 0.35 s of a 2 s pass: 1,750 -> 1,000
    assert mx.width_options([2, 12], []) == [2, 3, 4, 5, 6, 7, 8, 12]
    assert mx.uniform_mix(LAYERS, 3) == {"conv1": 8, "conv2": 3, "fc": 8}
    assert mx.uniform_mix(LAYERS, 3, include_fixed=True) == {"conv1": 3, "conv2": 3, "fc": 3}
    mix, notes = mx.mix_from_layers(LAYERS, [{"fqn": "conv2", "bits": 12}, {"fqn": "fc", "bits": 4}],
                                    options=[2, 3, 4, 8])
    assert mix == {"conv1": 8, "conv2": 8, "fc": 8}
    assert notes == ["not in that run, left as they were: conv1",
                     "fixed here, kept at their width (unlock fixed layers to copy them): fc (4 there)",
                     "outside the mixer's widths, snapped: conv2 12→8"]
    assert mx.mix_from_layers(LAYERS, [{"fqn": "fc", "bits": 4}], include_fixed=True)[0]["fc"] == 4
    assert mx.describe({"conv1": 8, "conv2": 4, "fc": 8}, LAYERS) == "uniform 4 bits"
    assert mx.describe({"conv1": 8, "conv2": 4, "fc": 2}, LAYERS, {"conv1": 8, "conv2": 8, "fc": 8}) == "conv2 4 · fc 2"
    points = []
    for bits in (2, 3, 2):
        points = mx.add_point(points, {"mix": {"conv2": bits}, "acc": 90.0, "avg_bits": bits, "compression": 1.0})
    assert [p["mix"]["conv2"] for p in points] == [3, 2]                 # a repeated mix moves to the end
    fig = mx.tradeoff_figure({2: {"acc": 80.0, "avg_bits": 6.2, "compression": 5.2},
                              5: {"acc": 85.0, "avg_bits": 7.1, "compression": 4.5}}, points, [2], [5])
    assert trace_names(fig) == ["uniform widths", "mixes tried", "this mix"]
    assert list(fig.data[0].marker.symbol) == ["circle", "circle-open"] and fig.data[2].marker.symbol == "star"
    assert fig.layout.xaxis.title.text == "average bits per weight"
    sources = mx.allocation_sources([{"status": "completed", "method": m, "model": "a", "dataset": "d"}
                                     for m in ("msq", "multibit", "bsq", "uniform")]
                                    + [{"status": "failed", "method": "msq", "model": "a", "dataset": "d"}], "a", "d")
    assert [s["method"] for s in sources] == ["msq", "bsq", "uniform"]


def test_launch_form_helpers_for_methods_and_devices():
    assert lf.DECAY_GRID[0] == 1e-5 and lf.DECAY_GRID[-1] == 1.0 and 0.005 in lf.DECAY_GRID
    assert lf.strength_options("bsq", 0.0123).count(0.0123) == 1 and 32.0 in lf.strength_options("msq")
    assert lf.live_strength("bsq", {"bsq": {"decay": 0.02}, "reg": {"lam": 32.0}}) == 0.02
    assert lf.live_strength("msq", {"reg": {"lam": 40.0}}, last_change=64.0) == 64.0
    assert lf.parse_widths("multibit.eval_bits", "", allow_empty=True) == ([], None)
    assert "give at least one width" in lf.parse_widths("multibit.bits", " ")[1]
    assert lf.check_devices({"train.device": "cpu", "train.nproc": 4}, (), cpu_cores=4) == {}
    assert "no GPU is visible" in lf.check_devices({"train.device": "cuda"}, ())["train.device"]
    assert "offers GPUs 0, 1" in lf.check_devices({"train.device": "cuda:3"}, (0, 1))["train.device"]
    assert "use at most 2" in lf.check_devices({"train.device": "cuda", "train.nproc": 3}, (0, 1))["train.nproc"]
    assert lf.check_devices({"train.device": "cuda", "train.nproc": 2}, (0, 1)) == {}


# -- pages (AppTest against the seeded store) ------------------------------------------------------------
def test_multibit_page_shows_every_width_the_coresets_and_the_time_saved(app, seeded):
    at = open_page(app, "multibit", run=seeded["ids"]["multibit"])
    assert texts(at, "header") == ["multibit 50%"]
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Mean acc. (trained)"].endswith("%") and metrics["Mean acc. (unseen)"].endswith("%")
    assert {"At 2 bits", "At 8 bits", "Training time", "Time saved"} <= set(metrics)
    assert panel(at) == ["acc_widths", "acc_vs_width", "coreset_sizes", "coreset_overlap", "scores", "epoch_times"]
    captions = " ".join(texts(at, "caption"))
    assert "unseen widths 5, 6, 7" in captions and "2 coreset selection(s)" in captions
    assert f"Measured against full-data run “multibit 100%” (`{seeded['ids']['multibit_full']}`)" in captions
    assert len(at.get("plotly_chart")) == 1                                    # the time comparison
    [table] = [d.value for d in at.dataframe if "total (s)" in d.value.columns]
    assert list(table["coreset"]) == ["50%", "100%"]
    at.query_params["run"] = seeded["ids"]["multibit_full"]                   # the full-data run: nothing saved
    at.run()
    assert not at.exception and "coreset_sizes" not in panel(at)
    assert any("it is the full-data baseline" in c for c in texts(at, "caption"))


def test_mixer_evaluates_mixes_from_the_checkpoint_and_keeps_fixed_layers_locked(app, seeded):
    run_id = seeded["ids"]["multibit"]
    at = open_page(app, "multibit", run=run_id, view=MIXER)
    sliders = {s.key.rsplit(":", 1)[1]: s for s in at.select_slider if s.key.startswith("mix:")}
    assert at.select_slider(key=f"mixsamples:{run_id}").value == 359          # digits: all images, fast enough
    assert {k: (s.value, s.disabled) for k, s in sliders.items()} == {
        "conv1": (8, True), "conv2": (8, False), "fc": (8, True)}                # first/last fixed, locked
    summary = RunStore(seeded["home"]).run(run_id)["summary"]["multibit"]
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Average bits"] == "8.00" and metrics["Compression"] == "4.00×"
    assert metrics["Accuracy"] == f"{summary['acc_by_width']['8']:.2f}%"      # the checkpoint's model, exactly
    at.select_slider(key=f"mix:{run_id}:conv2").set_value(3).run()
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Accuracy"] == f"{summary['acc_by_width']['3']:.2f}%"
    assert metrics["Average bits"] == f"{summary['size_by_width']['3']['avg_bits']:.2f}"
    assert any("Evaluated in" in c and "ms" in c for c in texts(at, "caption"))
    at.get("button_group")[0].set_value("5").run()                             # the uniform-width setter
    assert at.select_slider(key=f"mix:{run_id}:conv2").value == 5
    assert {m.label: m.value for m in at.metric}["Accuracy"] == f"{summary['acc_by_width']['5']:.2f}%"
    at.toggle(key=f"mixunlock:{run_id}").set_value(True).run()                 # unlock: fc can change
    assert not at.select_slider(key=f"mix:{run_id}:fc").disabled
    at.select_slider(key=f"mix:{run_id}:fc").set_value(4).run()
    assert float({m.label: m.value for m in at.metric}["Average bits"]) < summary["size_by_width"]["5"]["avg_bits"]
    at.toggle(key=f"mixunlock:{run_id}").set_value(False).run()                # lock again: fc back to 8
    assert at.select_slider(key=f"mix:{run_id}:fc").value == 8
    [component] = at.get("component_instance")
    [item] = json.loads(json.loads(component.proto.json_args)["panel"])
    traces = {t["name"]: t for t in item["figure"]["data"]}
    assert len(traces["uniform widths"]["x"]) == 7 and len(traces["this mix"]["x"]) == 1
    assert len(traces["mixes tried"]["x"]) == 3      # 8, 3, and 5 with fc at 4; 5 again is "this mix" (moved to the end)
    at.select_slider(key=f"mixsamples:{run_id}").set_value(100).run()          # fewer images: a new set of points
    assert any("on the first 100 of 359 validation images" in c for c in texts(at, "caption"))
    [component] = at.get("component_instance")
    [item] = json.loads(json.loads(component.proto.json_args)["panel"])
    assert [t["name"] for t in item["figure"]["data"]] == ["uniform widths", "this mix"]


def test_mixer_applies_another_runs_final_allocation(app, seeded):
    run_id = seeded["ids"]["multibit"]
    at = open_page(app, "multibit", run=run_id, view=MIXER)
    source = at.selectbox(key=f"mixsrc:{run_id}")
    assert seeded["ids"]["uniform"] in source.options[0] or any(seeded["ids"]["uniform"] in o for o in source.options)
    source.set_value(seeded["ids"]["uniform"])
    at.button(key=f"mixapply:{run_id}").click().run()
    assert at.select_slider(key=f"mix:{run_id}:conv2").value == 4             # the uniform run's 4 bits
    assert at.select_slider(key=f"mix:{run_id}:conv1").value == 8             # fixed here: kept
    captions = " ".join(texts(at, "caption"))
    assert f"applied the final widths of run `{seeded['ids']['uniform']}`" in captions
    assert "fixed here, kept at their width" in captions and "conv1 (4 there)" in captions


def test_multibit_page_explains_runs_it_cannot_show(app, seeded):
    at = open_page(app, "multibit", run=seeded["ids"]["msq"])
    assert any("used method **msq**; this page shows multi-bit runs" in e for e in texts(at, "error"))
    assert at.selectbox(key="mb_picker").value is None
    store = RunStore(seeded["home"])                       # stopped before its first epoch: no metrics, no checkpoint
    config = store.run(seeded["ids"]["multibit"])["config"]
    early = store.create_run(config, name="stopped early", status="stopped")
    try:
        at = open_page(app, "multibit", run=early)
        assert any("No per-width accuracy yet" in i for i in texts(at, "info"))
        at.query_params["view"] = MIXER
        at.run()
        assert not at.exception
        assert any("The what-if mixer needs this run's model: no checkpoint at" in i for i in texts(at, "info"))
    finally:
        store.delete_run(early)


def test_run_page_for_multibit_and_bsq_runs(app, seeded):
    at = open_page(app, "run", run=seeded["ids"]["multibit"])
    assert panel(at) == ["acc_widths", "loss_widths", "accuracy", "loss"]
    assert [p.proto.text.split("**")[1] for p in at.get("progress")] == ["pretrain", "multibit"]
    assert {m.label: m.value for m in at.metric}["Widths"] == "2,3,4,8"
    assert any(link.proto.label.startswith("Every width, coresets") for link in at.get("page_link"))
    at.query_params["run"] = seeded["ids"]["bsq"]
    at.run()
    assert not at.exception
    assert [p.proto.text for p in at.get("progress")][1].startswith("**search** (bit planes, group Lasso)")
    assert {m.label: m.value for m in at.metric}["BSQ decay α now"] == "0.02"
    assert not any("No Hessian estimate" in c for c in texts(at, "caption"))
    assert "lam" in panel(at) and "sensitivity_bars" not in panel(at)
    slider = at.select_slider(key=f"lamslider:{seeded['ids']['bsq']}")
    assert slider.label.startswith("BSQ decay α live") and slider.value == 0.02 and slider.disabled
    why = at.table[0].value["why"]
    assert "re-quantization" in why["conv2"]


def test_compare_page_shows_a_multibit_run_at_each_width(app, seeded):
    at = open_page(app, "compare")
    at.multiselect(key="compare_pick").set_value([seeded["ids"]["multibit"], seeded["ids"]["bsq"]]).run()
    [numbers] = [d.value for d in at.dataframe if "avg bits" in d.value.columns]
    rows = list(numbers["run"])
    assert sum(r.endswith(("— 2b", "— 8b", "— 5b (unseen)")) for r in rows) == 3
    assert set(numbers["method"]) >= {"multibit", "bsq"}
    assert numbers.loc[numbers["method"] == "bsq", "λ"].isna().all()


def test_launch_form_shows_method_options_and_builds_their_config(fresh_app):
    at = open_page(fresh_app, "launch")
    at.get("button_group")[0].set_value("multibit").run()
    at.slider(key="f:multibit.coreset_fraction").set_value(0.3).run()     # below 1: the coreset options open
    at.number_input(key="f:multibit.reselect_every").set_value(3)
    at.selectbox(key="f:multibit.selection").set_value("topk")
    at.selectbox(key="f:multibit.act_bits").set_value("none")
    at.toggle(key="f:multibit.shared_bn").set_value(False)
    at.text_input(key="f:multibit.eval_bits").input("6").run()
    assert not at.exception and not texts(at, "error")
    config = at.json[0].value if isinstance(at.json[0].value, dict) else json.loads(at.json[0].value)
    assert config["method"] == "multibit" and config["multibit"]["bits"] == [2, 3, 4, 8]
    assert {k: config["multibit"][k] for k in ("coreset_fraction", "reselect_every", "selection", "act_bits",
                                                 "shared_bn", "eval_bits")} == {
        "coreset_fraction": 0.3, "reselect_every": 3, "selection": "topk", "act_bits": None, "shared_bn": False,
        "eval_bits": [6]}
    assert not at.get("select_slider") or all(s.key != "f:reg.lam" for s in at.select_slider)   # no λ for multibit
    at.text_input(key="f:multibit.bits").input("2,x").run()
    at.number_input(key="f:train.nproc").set_value(0).run()
    at.button(key="launch_button").click().run()
    errors = " ".join(texts(at, "error"))
    assert "Widths to train = '2,x' is invalid" in errors and "Processes per run = 0 is invalid" in errors
    assert RunStore(fresh_app_home()).list_runs() == []
    at.get("button_group")[0].set_value("bsq").run()
    assert at.select_slider(key="f:bsq.decay").value == 0.005
    at.select_slider(key="f:bsq.decay").set_value(0.02)
    at.number_input(key="f:bsq.requant_every").set_value(2).run()
    config = at.json[0].value if isinstance(at.json[0].value, dict) else json.loads(at.json[0].value)
    assert config["bsq"] == {**config["bsq"], "decay": 0.02, "requant_every": 2}


def test_launch_form_offers_gpus_the_runner_can_assign(fresh_app, monkeypatch):
    from msq.runs import gpus
    monkeypatch.setenv("MSQ_GPUS", "0,1")
    gpus.visible_gpus.cache_clear()
    try:
        at = open_page(fresh_app, "launch")
        device = at.selectbox(key="f:train.device")
        assert [o.split(" ")[0] for o in device.options] == ["cpu", "any", "cuda:0", "cuda:1"]
        assert device.value == "cuda"                                  # any free GPU by default
        at.number_input(key="f:train.nproc").set_value(3).run()
        at.button(key="launch_button").click().run()
        assert any(e.startswith("Processes per run = 3 is invalid here") and "offers 2" in e
                   for e in texts(at, "error"))
        at.selectbox(key="f:train.device").set_value("cuda:1")
        at.number_input(key="f:train.nproc").set_value(2).run()
        at.button(key="launch_button").click().run()
        assert any(e.startswith("Device = 'cuda:1' is invalid: allowed 'cuda' or 'cpu' when train.nproc > 1")
                   for e in texts(at, "error"))
        assert RunStore(fresh_app_home()).list_runs() == []
    finally:
        monkeypatch.delenv("MSQ_GPUS")
        gpus.visible_gpus.cache_clear()


def fresh_app_home() -> str:
    import os
    return os.environ["MSQ_HOME"]
