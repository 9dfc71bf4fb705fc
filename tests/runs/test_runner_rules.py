"""The runner's rules that need no training: id and value validation (nothing touched on bad input),
state transitions, device limits, and how dead workers are recognised (real processes, real pids)."""
import json
import os
import subprocess
import sys
import time

import pytest

from msq.errors import ConfigError, RunStoreError
from msq.runs import RunStore, launch, reap, resume, set_lam, stop
from msq.runs.procs import process_start_time
from msq.runs.runner import device_limit
from runs_helpers import tiny_config

UNKNOWN = "20990101-000000-abcdef"


@pytest.mark.parametrize("bad", ["../x", "..", "a/b", "20261123-120000-a1b2c3/../.."])
@pytest.mark.parametrize("action", [lambda h, r: stop(h, r), lambda h, r: resume(h, r),
                                    lambda h, r: set_lam(h, r, 1.0)], ids=["stop", "resume", "set_lam"])
def test_malformed_ids_are_refused_and_nothing_is_created(tmp_path, bad, action):
    with pytest.raises(RunStoreError, match="invalid run id"):
        action(tmp_path / "home", bad)
    assert not (tmp_path / "home").exists()


def test_unknown_ids_are_refused_with_where_to_look(tmp_path):
    RunStore(tmp_path)
    for action in (lambda: stop(tmp_path, UNKNOWN), lambda: resume(tmp_path, UNKNOWN),
                   lambda: set_lam(tmp_path, UNKNOWN, 2.0)):
        with pytest.raises(RunStoreError, match=f"no run '{UNKNOWN}' in .*`python -m msq runs"):
            action()
    assert RunStore(tmp_path).list_runs() == []


@pytest.mark.parametrize("value", [-1.0, float("nan"), float("inf"), 2e6, "3", True, None])
def test_invalid_lam_values_are_refused(tmp_path, value):
    store = RunStore(tmp_path)
    run_id = store.create_run(tiny_config())
    with pytest.raises(ConfigError, match=r"reg.lam = .* is invalid: allowed a number in \[0.0, 1000000.0\]"):
        set_lam(tmp_path, run_id, value)
    assert store.controls(run_id) == [] and store.run(run_id)["config"]["reg"]["lam"] == 8.0


def test_queued_runs_change_lam_in_their_config_and_stop_without_a_process(tmp_path):
    store = RunStore(tmp_path)
    run_id = store.create_run(tiny_config())
    set_lam(tmp_path, run_id, 64.0)
    assert store.run(run_id)["config"]["reg"]["lam"] == 64.0
    assert json.loads((tmp_path / run_id / "config.json").read_text())["reg"]["lam"] == 64.0
    assert stop(tmp_path, run_id) == "stopped" and store.run(run_id)["pid"] is None
    with pytest.raises(RunStoreError, match="is stopped: λ can change only while a run is queued or running"):
        set_lam(tmp_path, run_id, 1.0)


def test_only_failed_or_stopped_runs_resume(tmp_path):
    store = RunStore(tmp_path)
    run_id = store.create_run(tiny_config(), status="completed")
    with pytest.raises(RunStoreError, match="is completed: only a failed or stopped run can be resumed"):
        resume(tmp_path, run_id)


@pytest.mark.parametrize("config,match", [
    ({"train": {"batch_size": 0}}, r"train.batch_size = 0 is invalid"),
    ({"method": "magic"}, r"method = 'magic' is invalid"),
])
def test_launch_refuses_a_bad_config_before_storing_anything(tmp_path, config, match):
    with pytest.raises(ConfigError, match=match):
        launch(tmp_path, config)
    with pytest.raises(ConfigError, match=r"train.device = 'tpu' is invalid"):
        launch(tmp_path, tiny_config(), device="tpu")
    assert not (tmp_path / "msq.db").exists() or RunStore(tmp_path).list_runs() == []


def test_device_limits_come_from_arguments_then_environment_then_one(monkeypatch):
    monkeypatch.delenv("MSQ_MAX_CPU_RUNS", raising=False)
    assert device_limit("cpu") == 1 and device_limit("cuda") == 1
    monkeypatch.setenv("MSQ_MAX_CPU_RUNS", "3")
    assert device_limit("cpu") == 3 and device_limit("cpu", {"cpu": 2}) == 2
    assert device_limit("cuda:1", {"gpu": 2, "cuda:1": 4}) == 4 and device_limit("cuda:0", {"gpu": 2}) == 2
    monkeypatch.setenv("MSQ_MAX_CPU_RUNS", "many")
    with pytest.raises(ConfigError, match=r"MSQ_MAX_CPU_RUNS or max_runs\) = 'many' is invalid: allowed an integer >= 1"):
        device_limit("cpu")


def running_row(store: RunStore, pid, pid_start=None, heartbeat=None, host=None) -> str:
    from msq.runs.procs import HOST
    run_id = store.create_run(tiny_config())
    store.update_run(run_id, status="running", pid=pid, pid_start=pid_start, host=host or HOST,
                     heartbeat=heartbeat if heartbeat is not None else time.time())
    (tmp := store.run_dir(run_id)).mkdir()
    (tmp / "worker.log").write_text("line one\nTraceback: boom\n")
    return run_id


def test_reap_marks_dead_zombie_reused_and_silent_workers_failed_and_spares_live_ones(tmp_path):
    store = RunStore(tmp_path)
    exited = subprocess.Popen([sys.executable, "-c", "pass"])
    while exited.poll() is None:
        time.sleep(0.01)
    zombie = subprocess.Popen([sys.executable, "-c", "pass"])     # exits; nobody waits: a zombie
    time.sleep(0.5)
    me, my_start = os.getpid(), process_start_time(os.getpid())
    dead = running_row(store, exited.pid)
    undead = running_row(store, zombie.pid, process_start_time(zombie.pid))
    reused = running_row(store, me, my_start + 1)                 # our pid, but not the process it recorded
    never_started = running_row(store, None, heartbeat=time.time() - 60)
    elsewhere = running_row(store, 4242, heartbeat=time.time() - 60, host="another-host")
    alive = running_row(store, me, my_start)
    starting = running_row(store, None)
    assert sorted(reap(tmp_path)) == sorted([dead, undead, reused, never_started, elsewhere])
    assert {store.run(r)["status"] for r in (alive, starting)} == {"running"}
    run = store.run(dead)
    assert run["status"] == "failed" and run["error"].startswith(f"the worker (pid {exited.pid}) died")
    assert run["error"].endswith("Traceback: boom") and run["log_tail"] == "line one\nTraceback: boom"
    assert "no heartbeat from the worker on another-host" in store.run(elsewhere)["error"]
    assert "did not start within 10 s" in store.run(never_started)["error"]
    assert reap(tmp_path) == []                                    # nothing is marked twice


def test_stop_escalates_to_sigkill_when_a_worker_ignores_both_requests(tmp_path):
    store = RunStore(tmp_path)
    stubborn = subprocess.Popen([sys.executable, "-c", "import signal, time; signal.signal(signal.SIGTERM, "
                                 "signal.SIG_IGN); print('ready', flush=True); time.sleep(60)"],
                                stdout=subprocess.PIPE, text=True, start_new_session=True)
    assert stubborn.stdout.readline() == "ready\n"
    run_id = running_row(store, stubborn.pid, process_start_time(stubborn.pid))
    started = time.monotonic()
    assert stop(tmp_path, run_id, timeout=0.3, kill_after=0.3) == "stopped"
    assert time.monotonic() - started < 5
    with pytest.raises(ProcessLookupError):      # killed, and collected by the runner's liveness check
        os.kill(stubborn.pid, 0)
    assert "did not stop within 0.6 s and was killed" in store.run(run_id)["error"]
    assert [c["consumed"] for c in store.controls(run_id)] == [None]      # nobody took the request


def test_gpu_runs_spread_over_free_gpus_and_multi_gpu_runs_take_several():
    from collections import Counter

    from msq.runs.gpus import assign, parse_assignment
    one = lambda slot: 1    # noqa: E731 -- one run per GPU
    gpus = (0, 1, 2)
    busy = Counter()
    picked = []
    for _ in range(3):      # a λ sweep of single-GPU runs: one per free GPU
        device = assign("cuda", 1, busy, one, gpus)
        picked.append(device)
        busy.update(parse_assignment(device))
    assert sorted(picked) == ["cuda:0", "cuda:1", "cuda:2"]
    assert assign("cuda", 1, busy, one, gpus) is None                    # all busy: stays queued
    assert assign("cuda", 2, Counter({"cuda:1": 1}), one, gpus) == "cuda:0,2"
    assert assign("cuda", 4, Counter(), one, gpus) is None               # never more GPUs than exist
    assert assign("cuda:1", 1, Counter({"cuda:1": 1}), one, gpus) is None  # a pinned GPU waits for itself
    assert assign("cpu", 2, Counter(), one, gpus) == "cpu"               # CPU DDP runs count as one CPU run
    assert parse_assignment("cuda:0,1") == ["cuda:0", "cuda:1"] and parse_assignment("cuda") == ["cuda:0"]
