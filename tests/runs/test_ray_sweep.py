"""A 2-trial λ sweep on a local Ray instance: each trial is an ordinary run in the shared store."""
import pytest

from msq.config import RunConfig
from msq.runs import RunStore

ray = pytest.importorskip("ray", reason="Ray Tune is an optional extra: pip install -r requirements-extras.txt")
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("processes")]


def test_two_trial_ray_sweep_writes_two_runs_to_the_store(tmp_path):
    from msq.sweeps.ray_tune import ray_sweep
    base = RunConfig.from_dict({"model": "tinycnn", "data": {"name": "digits"},
                                "train": {"pretrain_epochs": 1, "search_epochs": 1, "finetune_epochs": 1,
                                          "threads": 1}}).to_dict()
    try:
        rows = ray_sweep(tmp_path / "home", base, {"reg.lam": [8.0, 64.0]}, num_cpus=2)
    finally:
        ray.shutdown()
    assert sorted(r["reg.lam"] for r in rows) == [8.0, 64.0]
    assert all(r["status"] == "completed" for r in rows)
    store = RunStore(tmp_path / "home")
    stored = {r["id"]: store.run(r["id"]) for r in store.list_runs()}
    assert set(stored) == {r["run_id"] for r in rows}
    for row in rows:
        run = stored[row["run_id"]]
        assert run["status"] == "completed" and run["config"]["reg"]["lam"] == row["reg.lam"]
        assert run["summary"]["final_acc"] == row["final_acc"]
        assert (tmp_path / "home" / row["run_id"] / "result.json").exists()


def test_a_bad_grid_fails_before_ray_starts(tmp_path):
    from msq.errors import ConfigError
    from msq.sweeps.ray_tune import ray_sweep
    with pytest.raises(ConfigError, match="reg.lam = -1.0 is invalid"):
        ray_sweep(tmp_path, RunConfig().to_dict(), {"reg.lam": [-1.0]})
    with pytest.raises(ConfigError, match="sweep grid = .* is invalid"):
        ray_sweep(tmp_path, RunConfig().to_dict(), {"reg.lam": []})
    assert not ray.is_initialized()
