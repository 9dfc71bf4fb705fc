"""Helpers of the run-store tests: tiny real training configs and polling with a deadline."""
import time

import pytest


def tiny_config(pretrain: int = 1, search: int = 2, finetune: int = 1, **train) -> dict:
    """tinycnn on sklearn digits: 23 steps per epoch, a few seconds per run on one thread."""
    return {"method": "msq", "model": "tinycnn", "data": {"name": "digits"}, "reg": {"lam": 8.0},
            "train": {"pretrain_epochs": pretrain, "search_epochs": search, "finetune_epochs": finetune,
                      "batch_size": 64, "threads": 1, "log_every": 5, **train}}


def wait_for(predicate, timeout: float, what: str, interval: float = 0.05):
    """Poll ``predicate`` until it returns something truthy; fail with ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)
