"""A real run store for the dashboard tests: short real trainings (tinycnn on sklearn digits, epochs
1,2,1; msq, uniform, bsq, and two multi-bit runs -- a coreset and its full-data baseline) written through
the trainer's own StoreCallback, plus the broken cases the pages must survive:
a worker killed by SIGKILL, a deleted run folder, an invalid stored config."""
from __future__ import annotations

import os
import shutil
import signal
import time
from pathlib import Path

from msq.config import RunConfig
from msq.runs import RunStore, launch, reap
from msq.runs.gates import GATES_ENV, armed_path, reached_path
from msq.training.store_callback import StoreCallback
from msq.training.trainer import Trainer

EPOCHS = {"pretrain_epochs": 1, "search_epochs": 2, "finetune_epochs": 1}


def tiny(name: str, method: str = "msq", lam: float = 50.0, threshold: float = 0.3, **extra) -> dict:
    """tinycnn on digits, every layer searched (so prunes happen within two search epochs)."""
    config = {"method": method, "model": "tinycnn", "name": name, "data": {"name": "digits"}, "reg": {"lam": lam},
              "prune": {"threshold": threshold}, "quant": {"keep_first_last": False},
              "train": {**EPOCHS, "batch_size": 64, "threads": 1, "log_every": 5}}
    config.update(extra)
    return RunConfig.from_dict(config).to_dict()


def train_in_process(store: RunStore, config: dict) -> str:
    """Train one run here, writing the store exactly as a background worker does."""
    run_id = store.create_run(config, name=config["name"])
    cfg = RunConfig.from_dict(config)
    Trainer(cfg, callbacks=[StoreCallback(store, run_id)], run_dir=store.run_dir(run_id)).fit()
    return run_id


def wait(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise TimeoutError(f"timed out after {timeout} s waiting for {what}")


def seed(home: Path) -> dict:
    store = RunStore(home)
    ids = {}
    # a real background worker that will be SIGKILLed mid-run (started first: it trains while we seed)
    long = tiny("killed worker", lam=50.0)
    long["train"]["search_epochs"] = 200
    # it waits at a gate after step 30 (past its first epoch's stored steps) until it is killed, so it
    # cannot finish while the others train, however fast the machine is
    gates = Path(home) / "gates"
    gates.mkdir()
    armed_path(gates, "step-30").touch()
    os.environ[GATES_ENV] = str(gates)
    try:
        ids["killed"] = launch(store, long, name="killed worker")
    finally:
        del os.environ[GATES_ENV]       # runs started later (by any actor) train freely
    ids["msq"] = train_in_process(store, tiny("msq λ=50", lam=50.0))
    ids["msq_hard"] = train_in_process(store, tiny("msq λ=500", lam=500.0, threshold=0.5))
    ids["uniform"] = train_in_process(store, tiny("uniform 4-bit", method="uniform", lam=0.0, uniform_bits=4))
    # multi-bit: a coreset run (first/last layers fixed, as by default) beside its full-data baseline; BSQ
    multibit = {"pretrain_epochs": 1, "search_epochs": 2, "finetune_epochs": 0, "batch_size": 64, "threads": 1,
                "log_every": 5}
    for key, fraction in (("multibit", 0.5), ("multibit_full", 1.0)):
        ids[key] = train_in_process(store, tiny(f"multibit {fraction:.0%}", method="multibit", train=multibit,
                                                quant={"keep_first_last": True},
                                                multibit={"coreset_fraction": fraction, "reselect_every": 1}))
    ids["bsq"] = train_in_process(store, tiny("bsq α=0.02", method="bsq", bsq={"decay": 0.02, "requant_every": 1}))
    ids["no_folder"] = train_in_process(store, tiny("folder deleted", lam=50.0))
    shutil.rmtree(store.run_dir(ids["no_folder"]))
    ids["bad_config"] = store.create_run({"method": "msq", "model": "tinycnn", "data": {"name": "digits"},
                                          "reg": {"lam": -5.0}}, name="bad config", status="stopped")
    one_epoch = {"pretrain_epochs": 0, "search_epochs": 1, "finetune_epochs": 0, "threads": 1}
    ids["corrupt_json"] = train_in_process(store, tiny("damaged record", lam=50.0, train=one_epoch))
    with store.write() as conn:   # a damaged database record (hand-edited, half-written by a crashed tool)
        conn.execute("UPDATE runs SET config = '{\"model\": ', summary = 'not json' WHERE id = ?",
                     (ids["corrupt_json"],))
    # kill the worker once it has stored some steps; reap() then marks it failed with its log
    wait(lambda: reached_path(gates, "step-30", 1).exists(), 120, "the background worker at its gate")
    wait(lambda: store.latest_scalars(ids["killed"]).get("loss"), 60, "the background worker's first steps")
    pid = store.run(ids["killed"])["pid"]
    os.killpg(pid, signal.SIGKILL)
    wait(lambda: reap(store) or store.run(ids["killed"])["status"] == "failed", 30, "reap to mark the run failed")
    return ids
