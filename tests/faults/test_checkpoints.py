"""The last two checkpoints and the stop snapshot, on real runs and real files: a damaged checkpoint.pt
is skipped with a one-line message naming it and the resumed run completes with exactly the steps it
should have; with every checkpoint damaged, resume and export fail in one line naming the files; a
stopped run exports the step it stopped at. The state is built directly (a run trained here, crashed
or stopped at a chosen step, then its files damaged), so nothing depends on timing."""
import torch
import pytest

from msq.report import load_quantized
from msq.report.checkpoint import read_quantized
from msq.report.rebuild import model_from_run_checkpoint
from msq.runs import RunStore, launch, resume, schedule, stop
from msq.runs.checkpoint_files import CHECKPOINT_NAME, PREVIOUS_NAME, STOP_NAME, damage
from msq.training.checkpoint import load_checkpoint, save_checkpoint
from recovery_helpers import (STEPS_PER_EPOCH as E, CrashAtStep, StopAtStep, kill_workers, loss_steps, msq_cli,
                              resumed_at, tiny_config, train_here, wait_for, wait_until_final)

pytestmark = pytest.mark.xdist_group("fault-checkpoints")
TOTAL = 4 * E        # tiny_config(): 1 pretrain + 2 search + 1 finetune epochs


def crashed_run(home) -> tuple[str, RunStore]:
    """A failed run that stored steps 1..2E+1: checkpoint.pt at step 2E, checkpoint.prev.pt at step E."""
    run_id = train_here(home, tiny_config(), CrashAtStep(2 * E + 1))
    store = RunStore(home)
    assert store.run(run_id)["status"] == "failed" and loss_steps(store, run_id)[-1] == 2 * E + 1
    return run_id, store


def step_of(path) -> int:
    return load_checkpoint(path)["state"]["step"]


def truncate(path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def no_temporaries(run_dir) -> bool:
    return not list(run_dir.glob(".*.tmp"))


def test_each_save_keeps_the_one_before_and_a_failed_write_leaves_no_temporary_file(tmp_path):
    path, previous = tmp_path / CHECKPOINT_NAME, tmp_path / PREVIOUS_NAME
    save_checkpoint(path, {"model": {}, "state": {"step": 1}}, previous=previous)
    save_checkpoint(path, {"model": {}, "state": {"step": 2}}, previous=previous)
    assert (step_of(path), step_of(previous)) == (2, 1)
    folder = tmp_path / "taken"                       # a real failure: the target is a folder
    (folder / "inside").mkdir(parents=True)
    with pytest.raises(OSError):
        save_checkpoint(folder, {"model": {}, "state": {"step": 3}})
    assert no_temporaries(tmp_path) and (step_of(path), step_of(previous)) == (2, 1)


@pytest.mark.slow
def test_resume_falls_back_past_a_truncated_checkpoint_and_completes_every_step_once(tmp_path):
    run_id, store = crashed_run(tmp_path)
    run_dir = tmp_path / run_id
    truncate(run_dir / CHECKPOINT_NAME)
    (run_dir / f".{CHECKPOINT_NAME}.4242.tmp").touch()               # what a write killed half-way left
    done = msq_cli("resume", run_id, "--home", str(tmp_path))
    assert done.returncode == 0, done.stderr
    run = wait_until_final(store, run_id)
    assert run["status"] == "completed", run["error"]
    log = (run_dir / "worker.log").read_text()
    warnings = [l for l in log.splitlines() if l.startswith("warning:")]
    assert warnings == [f"warning: {run_dir / CHECKPOINT_NAME} is truncated or not a checkpoint (File is not a zip "
                        f"file); falling back to {run_dir / PREVIOUS_NAME}"]
    assert resumed_at(run_dir) == E                                  # the previous epoch end
    assert run["summary"]["steps_done"] == TOTAL and loss_steps(store, run_id) == list(range(1, TOTAL + 1))
    assert (run_dir / (CHECKPOINT_NAME + ".corrupt")).is_file()      # set aside, not kept as "previous"
    assert damage(run_dir / CHECKPOINT_NAME) is None and damage(run_dir / PREVIOUS_NAME) is None
    assert (step_of(run_dir / CHECKPOINT_NAME), step_of(run_dir / PREVIOUS_NAME)) == (TOTAL, TOTAL - E)
    assert no_temporaries(run_dir)


def test_export_falls_back_past_a_damaged_checkpoint_and_says_which_step_it_packs(tmp_path):
    run_id, _ = crashed_run(tmp_path)
    run_dir = tmp_path / run_id
    (run_dir / CHECKPOINT_NAME).write_bytes(b"not a checkpoint " * 100)
    done = msq_cli("export", run_id, "--home", str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert f"warning: {run_dir / CHECKPOINT_NAME} is truncated or not a checkpoint" in done.stderr
    assert f"falling back to {run_dir / PREVIOUS_NAME}" in done.stderr
    assert (f"packed the model at step {E} (epoch 1) from {PREVIOUS_NAME}; note: the run's report describes "
            f"step {2 * E + 1}") in done.stderr
    assert read_quantized(done.stdout.strip())["run"]["step"] == E


@pytest.mark.slow
def test_with_every_checkpoint_damaged_resume_export_and_the_worker_fail_in_one_line_naming_the_files(tmp_path):
    run_id, store = crashed_run(tmp_path)
    run_dir = tmp_path / run_id
    truncate(run_dir / CHECKPOINT_NAME)
    (run_dir / PREVIOUS_NAME).write_bytes(b"\0" * 4096)
    files = (str(run_dir / CHECKPOINT_NAME), str(run_dir / PREVIOUS_NAME))
    for command in ("resume", "export"):
        done = msq_cli(command, run_id, "--home", str(tmp_path))
        assert done.returncode == 2 and done.stdout == "", (command, done.stdout)
        [line] = done.stderr.splitlines()                              # one line, no traceback
        assert line.startswith("error: ") and all(f in line for f in files), line
        assert "no readable checkpoint" in line and f"rm {files[0]} {files[1]}" in line
    assert store.run(run_id)["status"] == "failed"                     # resume refused: nothing queued
    # a worker that meets them anyway (damaged after it was queued) fails with the same one line
    store.update_run(run_id, status="queued", error=None)
    assert schedule(tmp_path) == [run_id]
    run = wait_until_final(store, run_id)
    assert run["status"] == "failed" and "\n" not in run["error"]
    assert "CheckpointError" in run["error"] and all(f in run["error"] for f in files)
    assert loss_steps(store, run_id)[-1] == 2 * E + 1                 # what was stored stays readable


@pytest.mark.slow
def test_a_stopped_run_exports_the_step_it_stopped_at_and_resume_completes_every_step_once(tmp_path):
    stopped_at = E + 7                                                 # mid-way through the first search epoch
    run_id = train_here(tmp_path, tiny_config(), StopAtStep(stopped_at))
    store, run_dir = RunStore(tmp_path), tmp_path / run_id
    run = store.run(run_id)
    assert run["status"] == "stopped" and run["summary"]["steps_done"] == stopped_at
    assert (step_of(run_dir / STOP_NAME), step_of(run_dir / CHECKPOINT_NAME)) == (stopped_at, E)
    done = msq_cli("export", run_id, "--home", str(tmp_path))
    assert done.returncode == 0, done.stderr
    packed = read_quantized(done.stdout.strip())
    assert packed["run"]["step"] == stopped_at and packed["run"]["checkpoint"] == STOP_NAME
    assert f"packed the model at step {stopped_at} (epoch 1) from {STOP_NAME}" in done.stderr
    assert "note:" not in done.stderr                                  # the report describes the same step
    reference = model_from_run_checkpoint(run_dir / STOP_NAME, {})[0]
    x = torch.randn(4, 1, 8, 8)
    with torch.no_grad():
        assert torch.equal(load_quantized(done.stdout.strip())(x), reference(x))

    assert resume(tmp_path, run_id) == "running"                      # a real worker continues it
    run = wait_until_final(store, run_id)
    assert run["status"] == "completed", run["error"]
    assert resumed_at(run_dir) == E and not (run_dir / STOP_NAME).exists()
    assert run["summary"]["steps_done"] == TOTAL and loss_steps(store, run_id) == list(range(1, TOTAL + 1))
    assert no_temporaries(run_dir)


@pytest.mark.slow
def test_a_stop_through_the_runner_writes_the_checkpoint_export_packs(tmp_path):
    store = RunStore(tmp_path)
    run_id = launch(tmp_path, tiny_config(pretrain=1000))             # it cannot end before it is stopped
    run_dir = tmp_path / run_id
    try:
        wait_for(lambda: (run_dir / CHECKPOINT_NAME).is_file(), 120, "the first epoch checkpoint")
        assert stop(tmp_path, run_id, timeout=120) == "stopped"       # cooperative: no signal needed
    finally:
        kill_workers(tmp_path)
    run = store.run(run_id)
    steps = run["summary"]["steps_done"]
    assert loss_steps(store, run_id) == list(range(1, steps + 1)) and step_of(run_dir / STOP_NAME) == steps
    done = msq_cli("export", run_id, "--home", str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert read_quantized(done.stdout.strip())["run"]["step"] == steps and "note:" not in done.stderr
