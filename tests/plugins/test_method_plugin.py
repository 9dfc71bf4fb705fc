"""A new method is one module plus one registration: the toy "float" method of ``float_method.py``
shows up in the CLI's choices, the launch form's options, a foreground run, a background worker's
run and its report, with no file of msq/ or dashboard/ knowing its name."""
from __future__ import annotations

import importlib
import json
import os
from pathlib import Path

import pytest

from msq.cli import build_parser, main
from msq.methods import get_method, list_methods, unregister_method
from msq.runs import RunStore, runner
from runs_helpers import wait_for

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
TINY = ["--dataset", "digits", "--model", "tinycnn", "--epochs", "1,1,0", "--threads", "1", "--quiet"]


@pytest.fixture(autouse=True)
def float_method():
    """The plugin imported (so registered) for each test, and forgotten after it: the other tests of this
    process see only the built-in methods."""
    import float_method as module
    yield importlib.reload(module)
    unregister_method("float")


def method_choices() -> list:
    train = build_parser()._subparsers._group_actions[0].choices["train"]
    [action] = [a for a in train._actions if "--method" in a.option_strings]
    return list(action.choices)


def test_the_registration_is_all_the_registry_needs(float_method):
    assert "float" in list_methods()
    spec = get_method("float")
    assert spec.method_class() is float_method.FloatMethod
    assert "float" in method_choices()


def test_every_method_section_is_a_section_of_the_run_config():
    from msq.config import RunConfig
    from msq.methods import all_methods
    defaults = RunConfig()
    for spec in all_methods():
        if spec.config_key:
            assert isinstance(getattr(defaults, spec.config_key), spec.config_class), spec.name


def test_a_foreground_run_and_its_report(tmp_path, capsys):
    home = tmp_path / "home"
    assert main(["train", "--method", "float", "--home", str(home), *TINY]) == 0
    [row] = RunStore(home).list_runs()
    assert row["method"] == "float" and row["status"] == "completed"
    summary = RunStore(home).run(row["id"])["summary"]
    assert summary["method"] == "float" and summary["final_acc"] > 20.0   # 10 classes: chance is 10%
    events = [e["phase"] for e in summary["events"] if e["kind"] == "phase"]
    assert events == ["float"]
    out = tmp_path / "report.json"
    assert main(["report", row["id"], "--home", str(home), "-f", "json", "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["run"]["method"] == "float"
    assert list(report["layers"]) == [layer["fqn"] for layer in summary["layers"]]
    assert report["totals"]["final_acc"] == summary["final_acc"]


def test_a_background_worker_imports_the_module_named_in_the_environment(tmp_path, monkeypatch):
    """The runner's worker is a fresh process: ``$MSQ_METHOD_MODULES`` is how it learns the method."""
    monkeypatch.setenv("MSQ_METHOD_MODULES", "float_method")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in (str(HERE), os.environ.get("PYTHONPATH")) if p))
    home = tmp_path / "home"
    run_id = runner.launch(home, {"method": "float", "model": "tinycnn", "data": {"name": "digits"},
                                  "train": {"pretrain_epochs": 1, "search_epochs": 0, "finetune_epochs": 0,
                                            "threads": 1}})
    run = wait_for(lambda: (r := RunStore(home).run(run_id))["status"] in ("completed", "failed") and r, 300,
                   f"run {run_id} to end")
    assert run["status"] == "completed", (run["error"], (home / run_id / "worker.log").read_text()[-2000:])
    assert run["summary"]["method"] == "float"


def test_the_launch_form_offers_it(tmp_path, monkeypatch):
    from streamlit.testing.v1 import AppTest
    monkeypatch.syspath_prepend(str(ROOT))       # the app imports the dashboard package
    monkeypatch.setenv("MSQ_HOME", str(tmp_path / "home"))
    at = AppTest.from_file(str(ROOT / "dashboard" / "app.py"), default_timeout=60)
    at.run()
    at.switch_page("app_pages/launch.py").run()
    assert not at.exception, [e.value for e in at.exception]
    method = at.segmented_control(key="f:method")
    assert "float" in method.options
    method.set_value("float").run()
    assert not at.exception, [e.value for e in at.exception]
    assert get_method("float").help in [c.value for c in at.caption]      # the method's line under the choice
