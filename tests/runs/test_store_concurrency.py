"""Several writer processes (one per run) and a reader at once on one real database: afterwards
every run has every step exactly once, and nobody saw "database is locked"."""
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from msq.runs import RunStore

WRITER = Path(__file__).with_name("write_steps.py")
ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
@pytest.mark.xdist_group("runs-processes")
def test_concurrent_writers_and_a_polling_reader_lose_and_duplicate_nothing(tmp_path):
    steps, layers = 3000, 50
    store = RunStore(tmp_path)
    run_ids = [store.create_run({"method": "msq", "model": f"m{i}"}, status="running") for i in range(4)]
    for run_id in run_ids:
        store.set_layers(run_id, [{"idx": i, "fqn": f"l{i}"} for i in range(layers)])
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [subprocess.Popen([sys.executable, str(WRITER), str(tmp_path), run_id, str(steps), str(layers)],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for run_id in run_ids]
    reads = 0
    while any(p.poll() is None for p in procs):           # the dashboard's polling, as fast as it goes
        for run_id in run_ids:
            store.list_runs()
            matrix = store.layer_matrix(run_id, "lsb_density", max_steps=200)
            assert matrix.n_steps <= 200 and len(matrix.values) == matrix.n_steps * layers
            loss = store.scalar_series(run_id, "loss", max_points=300)["loss"]["step"]
            assert loss == sorted(set(loss))
            store.events(run_id)
            reads += 1
        time.sleep(0.01)
    outputs = [p.communicate() for p in procs]
    assert [p.returncode for p in procs] == [0] * len(procs), outputs
    assert not any("locked" in err or "warning" in err for _, err in outputs), outputs
    assert reads > 10
    for run_id in run_ids:
        assert store.run(run_id)["status"] == "completed"
        for key in ("loss", "lr", "task_loss"):
            assert store.scalar_series(run_id, key, max_points=None)[key]["step"] == list(range(1, steps + 1))
        matrix = store.layer_matrix(run_id, "lsb_density", max_steps=None)
        assert matrix.steps == list(range(1, steps + 1))
        assert matrix.to_lists()[7][-1] == pytest.approx(steps + 0.007)
        assert [e["step"] for e in store.events(run_id)] == list(range(250, steps + 1, 250))
    assert os.path.getsize(store.path.with_name("msq.db-wal")) < 64 << 20
