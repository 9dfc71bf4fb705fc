"""The dashboard reads what it knows of a method from the registry (msq.methods): a method registered at run
time (a toy "toy" method that trains in float: no knob, no widths, no section of its own, no budget) is offered by the launch
form and shown by the run page without any dashboard file knowing its name, and a run whose method is no
longer registered (an old run's) still renders."""
from __future__ import annotations

import json
import os

import pytest

from apptest_pages import open_page
from dashboard.components import launch_form as lf
from dashboard.components.charts import loss_curves
from dashboard.components.methods import prunes_lsbs, spec_of, steers_lam
from dashboard.components.mixer import source_methods
from dashboard.components.progress import phase_help, phase_plan
from dashboard.components.runs_table import runs_frame
from dashboard.components.why import explain
from msq.methods import MethodSpec, register_method, unregister_method
from msq.report import figures
from msq.runs import RunStore
from msq.training.schedule import Phase
from test_dashboard_pages import texts

pytestmark = pytest.mark.xdist_group("dashboard")

TRAIN = {"pretrain_epochs": 1, "search_epochs": 2, "finetune_epochs": 1}


def float_phases(cfg) -> list[Phase]:
    t = cfg.train
    return [Phase("float", t.pretrain_epochs + t.search_epochs + t.finetune_epochs, t.lr, quantized=False)]


@pytest.fixture
def toy_method():
    """A method of one's own, registered for the test (its Method class is never imported: nothing trains)."""
    spec = register_method(MethodSpec(
        name="toy", title="Float", help="Float training, no quantization: a toy method of the tests.",
        method_path="toy_methods:FloatMethod", phases=float_phases, schedule_help="Every epoch trains in float.",
        phase_help={"float": "no quantization"}, symbol="x"))
    yield spec
    unregister_method("toy")


def run_config(method: str) -> dict:
    return {"method": method, "model": "tinycnn", "data": {"name": "digits"}, "train": TRAIN}


def test_the_pure_pieces_follow_the_spec_of_a_method_registered_at_run_time(toy_method):
    assert spec_of("toy") is toy_method and not steers_lam("toy") and not prunes_lsbs(toy_method)
    assert lf.strength_options("toy") == [] and lf.live_strength("toy", run_config("toy")) is None
    assert [(p.name, p.epochs) for p in phase_plan(run_config("toy"), [])] == [("float", 4)]
    assert phase_help("toy", "float") == "no quantization"
    assert explain({}, 8, None, None, [], None, None, "toy", run_config("toy")) == \
        "8 bits, chosen by the Float method"
    assert runs_frame([{"id": "r1", "method": "toy", "lam": 32.0}])["λ"].isna().all()
    assert [t.name for t in loss_curves({"reg": {"step": [1], "epoch": [0], "value": [1.0]}}, [],
                                        method="toy").data] == ["penalty"]
    assert "toy" in source_methods()
    spec = figures.accuracy_vs_compression([{"id": "r1", "label": "toy", "method": "toy", "compression": 1.0,
                                             "accuracy": 90.0}])
    assert next(t for t in spec["data"] if t["name"] == "toy")["marker"]["symbol"] == "x"


def test_a_method_no_longer_registered_falls_back_to_the_method_neutral_view():
    events = [{"kind": "phase", "step": 0, "epoch": 0, "payload": {"phase": "warmup", "epochs": 1}}]
    assert [(p.name, p.epochs) for p in phase_plan(run_config("gone"), events)] == [("warmup", 1), ("training", 3)]
    assert phase_help("gone", "warmup") == "" and spec_of("gone") is None and not steers_lam("gone")
    assert explain({}, 4, None, None, [], None, None, "gone", {}) == "4 bits, chosen by the gone method"
    spec = figures.accuracy_vs_compression([{"id": "r1", "label": "old", "method": "gone", "compression": 2.0,
                                             "accuracy": 80.0}])
    assert next(t for t in spec["data"] if t["name"] == "gone")["marker"]["symbol"] == figures.UNKNOWN_SYMBOL


def test_the_launch_form_offers_a_method_registered_at_run_time(fresh_app, toy_method):
    at = open_page(fresh_app, "launch")
    method = at.segmented_control(key="f:method")
    assert "toy" in method.options
    method.set_value("toy").run()
    assert not at.exception and not texts(at, "error")
    assert toy_method.help in texts(at, "caption") and toy_method.schedule_help in texts(at, "caption")
    keys = {w.key for kind in ("select_slider", "toggle", "number_input", "text_input") for w in getattr(at, kind)}
    assert not {"f:reg.lam", "f:bsq.decay", "f:sweep", "f:use_target", "f:prune.threshold", "f:uniform_bits",
                "f:multibit.bits", "f:prune.target_avg_bits"} & keys        # no knob, budget, pruning or widths
    assert "f:quant.init_bits" in {s.key for s in at.slider}               # it picks no widths of its own
    config = at.json[0].value if isinstance(at.json[0].value, dict) else json.loads(at.json[0].value)
    assert config["method"] == "toy"


@pytest.mark.parametrize("method", ["toy", "gone"])
def test_the_run_page_shows_a_run_of_a_method_registered_at_run_time_or_no_longer_known(fresh_app, toy_method,
                                                                                        method):
    store = RunStore(os.environ["MSQ_HOME"])
    run_id = store.create_run(run_config(method), name=f"a {method} run", status="stopped")
    at = open_page(fresh_app, "run", run=run_id)
    assert texts(at, "header") == [f"a {method} run"]
    assert {m.label: m.value for m in at.metric}["Method"] == method
    assert not at.select_slider                                          # no live strength to steer
    if method == "toy":
        assert [p.proto.text.split("**")[1] for p in at.get("progress")] == ["float"]
        assert "(no quantization)" in at.get("progress")[0].proto.text
    else:
        assert any("the stored config is invalid: run.method = 'gone'" in w for w in texts(at, "warning"))
