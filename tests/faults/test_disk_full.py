"""A full disk: the run ends as failed with "disk full" as its reason, leaves no temporary file,
read-only commands keep working and say the disk is full, a run that died of it is told apart from a
killed one, and resume continues it once space is back.

The real thing runs on a small tmpfs mounted as the run home (root only; skipped otherwise, with the
reason). The tests that need no mount write into /dev/full, a real device that fails every write with
ENOSPC. Gates are states, never times: the worker's first checkpoint, its run leaving "running"."""
import errno
import gc
import json
import os
import re
import shutil
import subprocess
import sys
import time

import pytest

from msq.config import RunConfig
from msq.runs import RunStore, launch, reap, resume, stop
from msq.runs.checkpoint_files import CHECKPOINT_NAME
from msq.runs.disk import RESERVE_NAME, disk_full_reason, free_bytes, is_disk_full
from msq.runs.procs import HOST, process_start_time
from msq.training.callbacks import Callback
from msq.training.checkpoint import load_checkpoint
from msq.training.store_callback import StoreCallback
from msq.training.trainer import Trainer
from recovery_helpers import (STEPS_PER_EPOCH as E, kill_workers, loss_steps, msq_cli, resumed_at, tiny_config,
                              train_here, wait_for, wait_until_final)

pytestmark = pytest.mark.xdist_group("fault-disk-full")
DISK_FULL_LINE = "error: disk full: No space left on device writing /somewhere/checkpoint.pt"


@pytest.fixture
def small_disk(tmp_path):
    """A 16 MiB tmpfs, unmounted (lazily, should a process still hold it) when the test ends."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if shutil.which("mount") is None:
        pytest.skip("no mount command here: the full-disk test needs a small tmpfs as the run home")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mount)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs as the run home ({done.stderr.strip() or 'mount failed'}): "
                    "the full-disk test needs root (or CAP_SYS_ADMIN)")
    yield mount
    kill_workers(mount / "home")
    subprocess.run(["umount", "-l", str(mount)], capture_output=True)


@pytest.fixture
def sleepers():
    """Live processes that stand in for workers; killed at the end whatever happened."""
    procs: list[subprocess.Popen] = []
    yield procs
    for proc in procs:
        proc.kill()
        proc.wait()


def fill(folder, name: str) -> None:
    """Write ``folder/name`` until the file system has no byte left."""
    fd = os.open(folder / name, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    try:
        for size in (1 << 20, 1 << 12, 1):
            while True:
                try:
                    os.write(fd, b"\0" * size)
                except OSError as exc:
                    assert exc.errno == errno.ENOSPC
                    break
    finally:
        os.close(fd)
    assert free_bytes(folder) == 0


def vanishing_worker_row(store: RunStore, log: str, sleepers: list) -> tuple[str, subprocess.Popen]:
    """A "running" run whose worker is a live process the test ends later (then reap must write)."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    sleepers.append(proc)
    run_id = store.create_run(tiny_config())
    store.update_run(run_id, status="running", pid=proc.pid, pid_start=process_start_time(proc.pid), host=HOST,
                     heartbeat=time.time())
    store.run_dir(run_id).mkdir()
    (store.run_dir(run_id) / "worker.log").write_text(log)
    return run_id, proc


@pytest.mark.slow
def test_a_full_disk_fails_the_run_as_disk_full_readers_keep_working_and_resume_continues(small_disk, sleepers):
    home = small_disk / "home"
    store = RunStore(home)
    killed, sleeper_a = vanishing_worker_row(store, "--- worker starts\n", sleepers)
    starved, sleeper_b = vanishing_worker_row(store, f"--- worker starts\n{DISK_FULL_LINE}\n", sleepers)
    run_id = launch(home, tiny_config(pretrain=1000), max_runs={"cpu": 3})   # it cannot end by itself
    run_dir = home / run_id
    wait_for(lambda: (run_dir / CHECKPOINT_NAME).is_file() and (run_dir / RESERVE_NAME).is_file(), 120,
             "the worker's first checkpoint and its disk reserve")

    fill(small_disk, "filler")
    run = wait_until_final(store, run_id, timeout=120)
    # which write fails first (a log line, the store, the checkpoint) is the machine's business; the reason
    # names the first one, and the free space when the worker gave up
    assert run["status"] == "failed" and run["error"].startswith("disk full: "), run["error"]
    assert " bytes free on the file system of " in run["error"]
    assert "\n" not in run["error"] and "python -m msq resume" in run["error"]
    assert not list(run_dir.glob(".*.tmp")) and not (run_dir / RESERVE_NAME).exists()
    for name in ("epochs.jsonl", "events.jsonl"):                          # whole lines only, no half record
        assert all(json.loads(line) for line in (run_dir / name).read_text().splitlines())
    assert "error: disk full: " in (run_dir / "worker.log").read_text()      # said on stderr at once
    checkpoint_step = load_checkpoint(run_dir / CHECKPOINT_NAME)["state"]["step"]   # the last one written whole

    # still full (the reserve's space taken too); the two other workers vanish: reap would have to write
    fill(small_disk, "filler-2")
    for proc in (sleeper_a, sleeper_b):
        proc.kill()
        proc.wait()
    listing = msq_cli("runs", "--home", str(home))
    assert listing.returncode == 0 and run_id in listing.stdout and killed in listing.stdout, listing.stderr
    assert re.match(rf"warning: the disk holding {re.escape(str(home))} is full \([\d,]+ bytes free\): dead workers "
                    "are not marked", listing.stderr), listing.stderr
    shown = msq_cli("show", run_id, "--home", str(home))
    assert shown.returncode == 0 and "status   failed" in shown.stdout and "error    disk full: " in shown.stdout
    printed = msq_cli("report", run_id, "--home", str(home), "-f", "json", "-o", "-")
    assert printed.returncode == 0 and '"status": "failed"' in printed.stdout, printed.stderr
    written = msq_cli("report", run_id, "--home", str(home), "-f", "csv")
    assert written.returncode == 1 and written.stderr.startswith("error: disk full: No space left on device writing "
                                                                 f"{run_dir / 'reports'}")
    assert len(written.stderr.splitlines()) == 1 and not list((run_dir / "reports").glob(".*"))

    # space is back: the vanished workers are marked, each with its own reason
    (small_disk / "filler").unlink()
    (small_disk / "filler-2").unlink()
    assert sorted(reap(home)) == sorted([killed, starved])
    assert store.run(killed)["error"].startswith(f"the worker (pid {sleeper_a.pid}) died without recording an "
                                                 "end: killed, crashed or out of memory")
    assert "it ran out of disk space and could not record it (worker.log: disk full: " in store.run(starved)["error"]
    assert store.run(run_id)["error"].startswith("disk full: ")

    # recovery: resume continues from the last whole checkpoint; stopped a while later, the store holds
    # every step once
    assert resume(home, run_id, max_runs={"cpu": 3}) == "running"
    wait_for(lambda: len(loss_steps(store, run_id)) > checkpoint_step + E, 120, "an epoch past the checkpoint")
    assert stop(home, run_id, timeout=120) == "stopped"
    run = store.run(run_id)
    assert resumed_at(run_dir) == checkpoint_step
    assert loss_steps(store, run_id) == list(range(1, run["summary"]["steps_done"] + 1))


@pytest.mark.slow
def test_with_the_store_closed_and_the_disk_full_readers_still_open_it(small_disk):
    home = small_disk / "home"
    run_id = train_here(home, tiny_config(pretrain=1, search=0, finetune=0))
    RunStore(home).close()
    gc.collect()                                 # every connection closed: SQLite removed its -wal and -shm files
    assert sorted(p.name for p in home.glob("msq.db*")) == ["msq.db"]
    fill(small_disk, "filler")                   # now not even the 32 KiB -shm file fits
    listing = msq_cli("runs", "--home", str(home))
    assert listing.returncode == 0 and run_id in listing.stdout and "completed" in listing.stdout, listing.stderr
    assert listing.stderr.startswith(f"warning: the disk holding {home} is full")
    shown = msq_cli("show", run_id, "--home", str(home))
    assert shown.returncode == 0 and "status   completed" in shown.stdout, shown.stderr
    printed = msq_cli("report", run_id, "--home", str(home), "-f", "md", "-o", "-")
    assert printed.returncode == 0 and run_id in printed.stdout, printed.stderr
    snapshot = RunStore(home, create=False)      # a writer is told why it cannot write
    assert snapshot.snapshot and snapshot.run(run_id)["status"] == "completed"
    with pytest.raises(OSError, match="the run store is open read-only") as refused:
        snapshot.update_run(run_id, name="renamed")
    assert is_disk_full(refused.value)
    snapshot.close()
    wal = home / "msq.db-wal"                    # SQLite's first try may leave an empty one: no write got in
    assert not wal.exists() or wal.stat().st_size == 0
    (small_disk / "filler").unlink()             # space back: the store opens for writing again
    store = RunStore(home, create=False)
    assert not store.snapshot and store.update_run(run_id, name="after the full disk")


class WritesGoToDevFull(Callback):
    """From epoch ``epoch`` on, this process's checkpoint temp file is /dev/full (every write: ENOSPC)."""

    def __init__(self, run_dir, epoch: int):
        self.run_dir, self.epoch = run_dir, epoch

    def on_epoch_end(self, trainer, scalars):
        if trainer.state.epoch == self.epoch:
            (self.run_dir / f".{CHECKPOINT_NAME}.{os.getpid()}.tmp").symlink_to("/dev/full")


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full (Linux)")
def test_a_checkpoint_write_that_hits_enospc_names_the_file_and_keeps_the_last_checkpoint(tmp_path):
    store = RunStore(tmp_path)
    run_id, run_dir = "20260101-000000-d15c0f", tmp_path / "20260101-000000-d15c0f"
    trainer = Trainer(RunConfig.from_dict(tiny_config()), run_dir=run_dir,
                      callbacks=[StoreCallback(store, run_id), WritesGoToDevFull(run_dir, epoch=2)])
    with pytest.raises(OSError) as raised:
        trainer.fit()
    assert raised.value.errno == errno.ENOSPC and raised.value.filename == str(run_dir / CHECKPOINT_NAME)
    assert is_disk_full(raised.value)
    assert disk_full_reason(raised.value, tmp_path).startswith(
        f"disk full: No space left on device writing {run_dir / CHECKPOINT_NAME}; ")
    assert load_checkpoint(run_dir / CHECKPOINT_NAME)["state"]["step"] == E   # the last whole one stays
    assert not list(run_dir.glob(".*.tmp"))                                      # the temp file is gone
    run = store.run(run_id)
    assert run["status"] == "failed" and run["error"].startswith(f"disk full: No space left on device writing {run_dir}")
    assert loss_steps(store, run_id)[-1] == 2 * E                               # every step it trained is stored


def test_reap_tells_a_worker_that_died_of_a_full_disk_from_a_killed_one(tmp_path, sleepers):
    store = RunStore(tmp_path)
    rows = {}
    for name, log in (("killed", "--- worker starts\n"), ("starved", f"--- worker starts\n{DISK_FULL_LINE}\n")):
        rows[name], proc = vanishing_worker_row(store, log, sleepers)
        proc.kill()
        proc.wait()
    assert sorted(reap(tmp_path)) == sorted(rows.values())
    assert store.run(rows["killed"])["error"].split(";")[0].endswith("killed, crashed or out of memory")
    assert ("died without recording an end: it ran out of disk space and could not record it (worker.log: "
            "disk full: No space left on device writing /somewhere/checkpoint.pt)") in store.run(rows["starved"])["error"]
