"""Controls that race a run's end or a stop, with real worker processes and a real SQLite file: a λ
change is applied or reported as not applied (never "done" and lost), and a λ set before a stop that
came before the first checkpoint survives the resume, with its event."""
import threading

import pytest

from gated_runs import (STEPS_PER_EPOCH, Gates, jsonl, loss_steps, tiny_config, trainer_events, wait_final,
                        wait_for)
from msq.cli import main
from msq.errors import RunStoreError
from msq.runs import RunStore, launch, resume, set_lam
from msq.runs.ownership import Attempt


def in_thread(call):
    """Run ``call`` in a thread; returns a function that joins it and gives its result (or raises its error)."""
    box = {}

    def target():
        try:
            box["value"] = call()
        except Exception as exc:  # handed to the test's thread
            box["error"] = exc
    thread = threading.Thread(target=target, daemon=True)
    thread.start()

    def result():
        thread.join(180)
        assert not thread.is_alive(), "the call did not return"
        if "error" in box:
            raise box["error"]
        return box["value"]
    return result


def wait_for_controls(store: RunStore, run_id: str, count: int) -> None:
    wait_for(lambda: len(store.controls(run_id)) >= count, f"{count} control rows")


@pytest.mark.slow
@pytest.mark.xdist_group("runs-processes")
def test_set_lam_wait_hears_applied_mid_run_and_not_applied_at_the_end(tmp_path, monkeypatch, capsys):
    gates = Gates(tmp_path / "gates", monkeypatch, "step-2", "run-end")
    store = RunStore(tmp_path / "home")
    run_id = launch(store, tiny_config(pretrain=0, search=1, finetune=0))
    gates.wait_reached("step-2")
    answer = in_thread(lambda: main(["set-lam", run_id, "32", "--wait", "180", "--home", str(store.home)]))
    wait_for_controls(store, run_id, 1)
    gates.open("step-2")
    assert answer() == 0 and capsys.readouterr().out == f"{run_id} λ -> 32 (applied)\n"
    gates.wait_reached("run-end")                     # trained to the end, about to record it
    answer = in_thread(lambda: set_lam(store, run_id, 64.0, wait=180))
    wait_for_controls(store, run_id, 2)
    gates.open("run-end")
    with pytest.raises(RunStoreError, match=r"λ change to 64 was not applied: the run ended \(completed\)"):
        answer()
    run = wait_final(store, run_id)
    first, late = store.controls(run_id)
    assert (first["outcome"], first["step"], late["outcome"], late["consumed"]) == ("applied", 2, "not_applied", None)
    assert run["summary"]["lam"] == 32.0 and store.list_runs()[0]["lam"] == 32.0      # 64 was never applied
    assert [e["payload"]["new"] for e in store.events(run_id, "lam_change")] == [32.0]
    assert main(["show", run_id, "--home", str(store.home)]) == 0
    shown = capsys.readouterr().out
    assert "control  lam=32.0: applied at step 2" in shown and "control  lam=64.0: not_applied (the run ended" in shown


@pytest.mark.slow
@pytest.mark.xdist_group("runs-processes")
def test_a_lam_set_before_a_stop_without_checkpoint_survives_the_resume(tmp_path, monkeypatch):
    gates = Gates(tmp_path / "gates", monkeypatch, "step-3")
    store = RunStore(tmp_path / "home")
    run_id = launch(store, tiny_config())
    gates.wait_reached("step-3")
    assert set_lam(store, run_id, 64.0) == "sent"
    store.add_control(run_id, "stop", "stopped by the test")   # what `stop` sends first
    gates.open("step-3")                                       # the gate stays open for the next attempt
    run = wait_final(store, run_id)
    run_dir = store.run_dir(run_id)
    assert run["status"] == "stopped" and run["summary"]["steps_done"] == 3
    assert not (run_dir / "checkpoint.pt").exists()            # stopped before the first checkpoint
    assert [(c["key"], c["outcome"], c["step"]) for c in store.controls(run_id)] == [
        ("lam", "applied", 3), ("stop", "applied", 3)]
    resume(store, run_id)
    run = wait_final(store, run_id)
    assert run["status"] == "completed", run["error"]
    assert run["attempt"] == 2 and (run_dir / "worker.log").read_text().count(f"starts run {run_id}") == 2
    assert run["summary"]["lam"] == 64.0 and store.list_runs()[0]["lam"] == 64.0
    (change,) = store.events(run_id, "lam_change")             # re-applied where the first attempt applied it
    assert change["step"] == 3 and change["payload"] == {"old": 8.0, "new": 64.0, "source": "control"}
    epoch_lam = store.scalar_series(run_id, "epoch_lam", max_points=None)["epoch_lam"]["value"]
    assert epoch_lam == [0.0, 64.0, 64.0, 0.0]                 # the search epochs trained with the new λ
    assert loss_steps(store, run_id) == list(range(1, 4 * STEPS_PER_EPOCH + 1))
    folder_events = [(e["kind"], e["step"]) for e in jsonl(run_dir / "events.jsonl")]
    assert folder_events == trainer_events(store, run_id) and folder_events.count(("lam_change", 3)) == 1
    assert [e["epoch"] for e in jsonl(run_dir / "epochs.jsonl")] == [1, 2, 3, 4]


def test_a_control_for_a_run_that_is_not_running_is_refused_not_left_pending(tmp_path, capsys):
    store = RunStore(tmp_path)
    run_id = store.create_run(tiny_config(), status="running")
    assert store.add_control(run_id, "lam", 2.0, only_if_running=True) is not None
    assert Attempt.of(store, run_id).end("completed")
    assert store.add_control(run_id, "lam", 3.0, only_if_running=True) is None
    (control,) = store.controls(run_id)
    assert control["outcome"] == "not_applied" and "ended (completed)" in control["note"]
    assert store.take_controls(run_id) == []                   # an expired control is never taken later
    assert main(["set-lam", run_id, "3", "--wait", "5", "--home", str(tmp_path)]) == 2
    assert "λ can change only while a run is queued or running" in capsys.readouterr().err
