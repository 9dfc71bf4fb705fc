"""Fixtures of the dashboard tests: one real store seeded once per session, and AppTest runners."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
APP = str(ROOT / "dashboard" / "app.py")
sys.path.insert(0, str(ROOT))

from dashboard_seed import seed  # noqa: E402
from msq.runs import RunStore  # noqa: E402


@pytest.fixture(scope="session")
def seeded(tmp_path_factory):
    """{"home": Path, "ids": {name: run id}} of a store with real short runs and the broken cases."""
    home = tmp_path_factory.mktemp("msq_home")
    return {"home": home, "ids": seed(home)}


@pytest.fixture
def app(seeded, monkeypatch):
    """An AppTest of the whole app (router + pages) against the seeded store."""
    from streamlit.testing.v1 import AppTest
    monkeypatch.setenv("MSQ_HOME", str(seeded["home"]))
    return AppTest.from_file(APP, default_timeout=60)


@pytest.fixture
def fresh_app(tmp_path, monkeypatch):
    """An AppTest against an empty store of its own (launch tests write here)."""
    from streamlit.testing.v1 import AppTest
    monkeypatch.setenv("MSQ_HOME", str(tmp_path / "home"))
    at = AppTest.from_file(APP, default_timeout=60)
    yield at
    store = RunStore(tmp_path / "home")
    for row in store.list_runs(status=("running", "queued")):   # never leave a worker behind
        from msq.runs import stop
        stop(store, row["id"], timeout=5, kill_after=2)


@pytest.fixture
def live_process():
    """A process that stands in for a live worker (the runner checks the pid and its start time)."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"], start_new_session=True)
    yield proc
    if proc.poll() is None:   # the dashboard's stop may have ended it already
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)

