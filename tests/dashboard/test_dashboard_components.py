"""The dashboard's pure pieces: the launch form's validation, progress/ETA, the store reads and their
derivations on real runs, the "why" table, the runs table, the report."""
from __future__ import annotations

from array import array

import pytest

from dashboard.components import launch_form as lf
from dashboard.components.live import build_figures, float_accuracy
from dashboard.components.progress import format_seconds, measure, phase_plan
from dashboard.components.runs_table import compare_points, filter_runs, runs_frame
from dashboard.components.snapshot import bits_by_epoch, read_snapshot, trajectory
from dashboard.components.why import explain, layer_rows
from msq.runs import LayerMatrix, RunStore

pytestmark = pytest.mark.xdist_group("dashboard")


# -- launch form ----------------------------------------------------------------------------------
def test_validate_reports_every_bad_field_with_the_dataclass_message():
    data = lf.build_config({"train.search_epochs": -1, "quant.init_bits": 12, "reg.lam": 32.0, "method": "nope"})
    errors = lf.validate(data)
    assert set(errors) == {"train.search_epochs", "quant.init_bits", "method"}
    assert errors["quant.init_bits"].startswith("quant.init_bits = 12 is invalid: allowed an integer in [2, 8]")
    assert lf.validate(lf.build_config({"model": "tinycnn", "data.name": "digits"})) == {}


def test_errors_are_led_by_the_form_label_and_keys_the_form_does_not_show_keep_the_key():
    errors = lf.validate(lf.build_config({"train.batch_size": 0, "train.momentum": -1.0, "uniform_bits": 0}))
    assert lf.labelled("train.batch_size", errors["train.batch_size"]).startswith("Batch size = 0 is invalid")
    assert lf.labelled("uniform_bits", errors["uniform_bits"]).startswith("Bits of every searched layer = 0 is")
    assert lf.error_markdown("train.batch_size", errors["train.batch_size"]).endswith(
        ":small[config key `train.batch_size`]")
    assert "train.momentum" not in lf.LABELS                      # not on the form: the message keeps its key
    assert lf.error_markdown("train.momentum", errors["train.momentum"]) == errors["train.momentum"]
    assert errors["train.momentum"].startswith("train.momentum = -1.0 is invalid")
    assert lf.labelled("train.lr", "train.lrx = 1 is invalid") == "train.lrx = 1 is invalid"   # whole keys only
    assert lf.label("sweep") == "λ sweep" and lf.label("form") == "form"


def test_lambda_grid_and_sweeps_are_log_spaced():
    assert lf.LAM_GRID[0] == 0.1 and lf.LAM_GRID[-1] == 10000.0 and 32.0 in lf.LAM_GRID
    assert lf.lam_options(33.0).count(33.0) == 1 and 0.0 in lf.lam_options(0.0) and -1.0 not in lf.lam_options(-1.0)
    assert lf.sweep_values(1, 1000, 4) == [1.0, 10.0, 100.0, 1000.0]
    assert lf.sweep_values(400, 4, 3) == [4.0, 40.0, 400.0]
    assert lf.run_names("net", [1.0, 10.0]) == ["net λ=1", "net λ=10"] and lf.run_names("net", [5.0]) == ["net"]
    with pytest.raises(ValueError, match="needs λ > 0"):
        lf.sweep_values(0, 10, 3)


def test_paths_the_dataclasses_cannot_check(tmp_path):
    (tmp_path / "net.py").write_text("def make(): pass\n")
    assert lf.check_paths({"model": "net.py:make"}, tmp_path) == {}
    assert "needs a factory" in lf.check_paths({"model": "net.py"}, tmp_path)["model"]
    assert "does not exist" in lf.check_paths({"model": "gone.py:make"}, tmp_path)["model"]
    assert "folder does not exist" in lf.check_paths({"data.name": "imagefolder:nope"}, tmp_path)["data.name"]
    assert lf.check_paths({"model": "tv:resnet18"}, tmp_path) == {}


# -- progress ---------------------------------------------------------------------------------------
def test_progress_per_phase_and_eta_from_measured_epoch_times():
    config = {"method": "msq", "train": {"pretrain_epochs": 2, "search_epochs": 4, "finetune_epochs": 2}}
    plan = phase_plan(config, [])
    latest = {"val_acc": {"epoch": 3, "step": 30, "value": 80.0}, "loss": {"step": 35, "epoch": 3, "value": 1.0}}
    scalars = {"epoch_seconds": {"value": [2.0, 2.0, 2.0]}}
    fraction, eta = measure(plan, latest, scalars, "running")
    assert [(p.name, p.state) for p in plan] == [("pretrain", "done"), ("search", "active"), ("finetune", "pending")]
    assert plan[1].done == pytest.approx(1.5) and fraction == pytest.approx(3.5 / 8)
    assert eta == pytest.approx(4.5 * 2.0) and plan[1].eta_s == pytest.approx(2.5 * 2.0)
    assert [p.name for p in phase_plan({"method": "uniform", "train": {"pretrain_epochs": 0, "search_epochs": 3,
                                                                       "finetune_epochs": 1}}, [])] == ["qat", "finetune"]
    assert format_seconds(42) == "42 s" and format_seconds(125) == "2 min 05 s" and format_seconds(7380) == "2 h 03 min"


# -- store reads and derivations on real runs ------------------------------------------------------
def test_snapshot_of_a_real_run_and_its_figures(seeded):
    store = RunStore(seeded["home"])
    snap = read_snapshot(store, seeded["ids"]["msq_hard"])
    assert snap.layer_names == ["conv1", "conv2", "fc"] and snap.config_error is None
    assert snap.density.n_steps == 18 and snap.density.n_layers == 3
    epochs, bits = bits_by_epoch(snap.bits, snap.layers)
    assert epochs[0] == 1 and [row[-1] for row in bits] == [float(l["bits"]) for l in snap.layers]
    assert all(b1 >= b2 for row in bits for b1, b2 in zip(row, row[1:]))   # MSQ only ever removes bits
    points = trajectory(snap.scalars, snap.events)
    assert [p["epoch"] for p in points] == [1, 2, 3, 4] and points[0]["phase"] == "(pretrain)"
    assert float_accuracy(snap) == snap.run["summary"]["float_acc"]
    figs = build_figures(snap, chosen=["fc"])
    assert set(figs) == {"bits_heatmap", "bits_bars", "density_heatmap", "layer_lines", "sensitivity_bars",
                         "sensitivity_heatmap", "loss", "accuracy", "lam", "trajectory"}
    assert all(f.layout.uirevision for f in figs.values())          # zoom survives live refreshes
    assert figs["sensitivity_bars"].data[-1].name.startswith("mean")


def test_bits_by_epoch_keeps_the_last_row_of_each_epoch_and_appends_the_current_widths():
    matrix = LayerMatrix("bits", [5, 10, 15, 20], [0, 0, 1, 1], ["a", "b"], array("f", [8, 8, 8, 8, 7, 8, 6, 8]))
    layers = [{"fqn": "a", "bits": 5}, {"fqn": "b", "bits": 8}]
    assert bits_by_epoch(matrix, layers) == ([1, 2, 3], [[8.0, 6.0, 5.0], [8.0, 8.0, 8.0]])
    assert bits_by_epoch(None, layers) == ([1], [[5.0], [8.0]])


def test_why_explains_fixed_pruned_kept_and_uniform_layers():
    config = {"method": "msq", "prune": {"threshold": 0.05, "min_bits": 2}, "quant": {"init_bits": 8, "fixed_bits": 8}}
    events = [{"kind": "hessian", "step": 10, "epoch": 1, "payload": {"mean_sensitivity": 2.0}},
              {"kind": "prune", "step": 10, "epoch": 1, "payload": {"fqn": "b", "old_bits": 8, "new_bits": 6, "k": 2}}]
    layers = [{"fqn": "a", "bits": 8, "fixed": True, "fixed_reason": "first layer", "params": 10},
              {"fqn": "b", "bits": 6, "params": 100}, {"fqn": "c", "bits": 8, "params": 100}]
    vectors = {"lsb_density": {"values": [0.5, 0.4, 0.3]}, "sensitivity": {"values": [1.0, 1.0, 4.0]}}
    rows = layer_rows(layers, vectors, events, config)
    assert rows[0]["why"] == "fixed at 8 bits (first layer); not searched"
    assert rows[1]["why"].startswith("8→6 bits in 1 prune, each when its LSB plane was (almost) empty "
                                     "(density ≤ α")
    assert "once two LSBs at once: its sensitivity was below the mean" in rows[1]["why"]
    assert rows[1]["start_bits"] == 8 and rows[1]["sensitivity_vs_mean"] == 0.5
    assert "keeps 8 bits: its LSBs carry information (density 0.30 > α = 0.05)" in rows[2]["why"]
    assert "sensitive (2.0× the mean): would drop one LSB at a time" in rows[2]["why"]
    assert explain({}, 4, None, None, [], None, None, "uniform", {"uniform_bits": 4}).startswith("uniform QAT")


# -- runs table -----------------------------------------------------------------------------------
def test_runs_table_filters_and_compare_points(seeded):
    rows = RunStore(seeded["home"]).list_runs()
    frame = runs_frame(rows)
    assert len(frame) == len(rows) and frame["step"].dtype.name == "Int64"
    assert [r["id"] for r in filter_runs(rows, statuses=["failed"])] == [seeded["ids"]["killed"]]
    assert [r["id"] for r in filter_runs(rows, methods=["uniform"])] == [seeded["ids"]["uniform"]]
    assert filter_runs(rows, text="λ=500")[0]["id"] == seeded["ids"]["msq_hard"]
    points = {p["id"]: p for p in compare_points(rows)}
    assert points[seeded["ids"]["uniform"]]["label"] == "uniform 4-bit"
    assert runs_frame([r for r in rows if r["method"] == "uniform"])["λ"].isna().all()   # λ means nothing there
