"""``python -m msq runs | show | stop | resume | set-lam`` on a stored run (no training needed)."""
import subprocess
import sys
from pathlib import Path

import pytest

from msq.cli import main
from msq.runs import RunStore, RunWriter
from runs_helpers import tiny_config

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def home(tmp_path):
    store = RunStore(tmp_path)
    run_id = store.create_run(tiny_config(), name="demo")
    store.update_run(run_id, status="running", started=1000.0)
    store.set_layers(run_id, [{"idx": 0, "fqn": "conv1", "kind": "conv2d", "params": 72, "bits": 8, "fixed": True},
                              {"idx": 1, "fqn": "fc", "kind": "linear", "params": 640, "bits": 8}])
    writer = RunWriter(store, run_id)
    writer.add_scalars(23, 1, {"loss": 0.25, "val_acc": 88.5, "compression": 4.0, "avg_bits": 8.0})
    writer.add_event(23, 1, "prune", {"fqn": "fc", "old_bits": 8, "new_bits": 6})
    writer.set_layer_bits("fc", 6)
    writer.finish("completed", {"final_acc": 90.25, "compression": 5.0, "average_bits": 6.4}, None)
    store.update_run(run_id, ended=1000.0 + 75)
    return tmp_path, run_id


def test_runs_lists_the_headline_numbers(home, capsys):
    path, run_id = home
    assert main(["runs", "--home", str(path)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split()[:6] == ["id", "status", "method", "model", "dataset", "λ"]
    assert out[1].split() == [run_id, "completed", "msq", "tinycnn", "digits", "8", "90.25", "5.00", "6.40", "1m15s"]
    assert main(["runs", "--home", str(path), "--status", "failed"]) == 0
    assert "no runs in" in capsys.readouterr().out


def test_show_prints_config_layers_metrics_and_events(home, capsys):
    path, run_id = home
    assert main(["show", run_id, "--home", str(path)]) == 0
    out = capsys.readouterr().out
    assert f"run {run_id}  demo" in out and "status   completed" in out and "model tinycnn" in out
    assert "conv1" in out and "(fixed)" in out and out.split("fc ")[1].split()[:3] == ["linear", "640", "6"]
    assert "last metrics at step 23:" in out and "val_acc=88.5" in out and "prune" in out and "new_bits=6" in out


def test_bad_ids_and_wrong_transitions_exit_2_with_a_reason(home, capsys):
    path, run_id = home
    assert main(["show", "../x", "--home", str(path)]) == 2
    assert "error: invalid run id '../x'" in capsys.readouterr().err
    assert main(["resume", run_id, "--home", str(path)]) == 2
    assert "is completed: only a failed or stopped run can be resumed" in capsys.readouterr().err
    assert main(["set-lam", run_id, "3", "--home", str(path)]) == 2
    assert "λ can change only while a run is queued or running" in capsys.readouterr().err
    assert main(["runs", "--home", str(path / "nowhere")]) == 2
    assert "no run store at" in capsys.readouterr().err and not (path / "nowhere").exists()


def test_stop_and_set_lam_on_a_queued_run(tmp_path, capsys):
    run_id = RunStore(tmp_path).create_run(tiny_config())
    assert main(["set-lam", run_id, "16", "--home", str(tmp_path)]) == 0
    assert main(["stop", run_id, "--home", str(tmp_path)]) == 0
    assert capsys.readouterr().out.splitlines() == [f"{run_id} λ -> 16", f"{run_id} stopped"]


@pytest.mark.parametrize("command", ["runs", "show", "stop", "resume", "set-lam"])
def test_every_command_has_help_with_home(command):
    out = subprocess.run([sys.executable, "-m", "msq", command, "--help"], cwd=ROOT, capture_output=True,
                         text=True, check=True).stdout
    assert "--home" in out


def test_sweep_queues_one_run_per_grid_value_and_checks_every_value_first(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("MSQ_MAX_CPU_RUNS", "1")
    args = ["sweep", "--home", str(tmp_path), "--model", "tinycnn", "--dataset", "digits", "--epochs", "1,1,1"]
    assert main([*args, "--grid", "reg.lam=8,x"]) == 2          # nothing queued when one value is bad
    assert "reg.lam = 'x' is invalid" in capsys.readouterr().err
    assert not (tmp_path / "msq.db").exists() or RunStore(tmp_path).list_runs() == []
    assert main([*args, "--grid", "reg.lam=8,64", "--grid", "train.seed=0,1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 4 and lines[0].endswith("reg.lam=8 train.seed=0")
    store = RunStore(tmp_path)
    runs = {r["id"]: store.run(r["id"]) for r in store.list_runs()}
    assert sorted((c["config"]["reg"]["lam"], c["config"]["train"]["seed"]) for c in runs.values()) == \
        [(8.0, 0), (8.0, 1), (64.0, 0), (64.0, 1)]
    assert sum(r["status"] == "running" for r in runs.values()) <= 1    # the CPU queue holds one at a time
    for run_id in runs:
        main(["stop", run_id, "--home", str(tmp_path)])
