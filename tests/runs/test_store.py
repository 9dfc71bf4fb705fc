"""The run store on a real SQLite file: schema and migrations, vector BLOB round trips, downsampling,
run-id validation (nothing written on a bad id), controls, and the resume truncation."""
import math
import sqlite3
from array import array

import pytest

from msq.errors import RunStoreError
from msq.runs import RunStore, RunWriter
from msq.runs import schema
from msq.runs.series import evenly_spaced, pack_vector, unpack_vector

CONFIG = {"method": "msq", "model": "tinycnn", "data": {"name": "digits"}, "reg": {"lam": 8.0}}
BAD_IDS = ["../x", "..", "a/b", "", "20261123-120000-a1b2c3/..", None, 42]


def table_counts(path) -> dict:
    conn = sqlite3.connect(path)
    try:
        return {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                for t in ("runs", "layers", "scalars", "layer_series", "events", "controls")}
    finally:
        conn.close()


def make_run(store: RunStore, layers: int = 4) -> str:
    run_id = store.create_run(CONFIG, name="t")
    store.set_layers(run_id, [{"idx": i, "fqn": f"l{i}", "kind": "conv2d", "shape": [2, 2], "params": 4,
                               "macs": 16, "bits": 8, "fixed": i == 0} for i in range(layers)])
    return run_id


def test_schema_is_created_in_wal_mode_with_its_version(tmp_path):
    store = RunStore(tmp_path / "home")
    conn = sqlite3.connect(store.path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == schema.SCHEMA_VERSION == len(schema.MIGRATIONS)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"runs", "layers", "scalars", "layer_series", "events", "controls"} <= tables
    assert store.conn.execute("PRAGMA busy_timeout").fetchone()[0] == schema.BUSY_TIMEOUT_MS


def test_migrations_are_idempotent_and_a_new_one_applies_once(tmp_path, monkeypatch):
    store = RunStore(tmp_path)
    run_id = make_run(store)
    now = schema.SCHEMA_VERSION
    assert schema.migrate(store.conn) == now and schema.migrate(store.conn) == now
    RunStore(tmp_path)                                   # reopening migrates nothing, loses nothing
    monkeypatch.setattr(schema, "MIGRATIONS", schema.MIGRATIONS + [["ALTER TABLE runs ADD COLUMN tag TEXT"]])
    monkeypatch.setattr(schema, "SCHEMA_VERSION", now + 1)
    assert schema.migrate(store.conn) == now + 1
    assert schema.migrate(schema.connect(store.path)) == now + 1   # a second process: no duplicate-column error
    assert store.conn.execute("PRAGMA user_version").fetchone()[0] == now + 1
    assert store.run(run_id)["name"] == "t"


def test_vector_blob_round_trip_is_exact_float32():
    values = [0.0, -1.5, 3.1415927, 1e-30, float("inf"), 7.0]
    blob = pack_vector(values)
    assert len(blob) == 4 * len(values)
    assert unpack_vector(blob) == array("f", values).tolist()
    assert math.isnan(unpack_vector(pack_vector([float("nan")]))[0])
    none_first = unpack_vector(pack_vector([None, 2]))            # a layer without a value yet
    assert math.isnan(none_first[0]) and none_first[1] == 2.0


def test_vectors_read_back_as_matrix_latest_and_one_layer(tmp_path):
    store = RunStore(tmp_path)
    run_id = make_run(store, layers=3)
    writer = RunWriter(store, run_id)
    for step in range(1, 11):
        writer.add_vectors(step, step // 5, {"lsb_density": [step + 0.25 * i for i in range(3)]})
    writer.flush()
    matrix = store.layer_matrix(run_id, "lsb_density", max_steps=None)
    assert (matrix.n_steps, matrix.n_layers, matrix.layers) == (10, 3, ["l0", "l1", "l2"])
    assert matrix.to_lists()[2] == [s + 0.5 for s in range(1, 11)]          # layer x step
    assert store.latest_vector(run_id, "lsb_density") == {"step": 10, "epoch": 2, "values": [10.0, 10.25, 10.5]}
    assert store.layer_series(run_id, "lsb_density", "l1")["value"] == [s + 0.25 for s in range(1, 11)]
    assert store.layer_series(run_id, "lsb_density", 2, max_points=4)["step"] == [1, 4, 7, 10]
    assert store.vector_metrics(run_id) == ["lsb_density"] and store.latest_vector(run_id, "bits") is None
    with pytest.raises(RunStoreError, match=r"no layer 'fc9'.*\['l0', 'l1', 'l2'\]"):
        store.layer_series(run_id, "lsb_density", "fc9")
    with pytest.raises(RunStoreError, match=r"layer index 3 is invalid .* allowed 0\.\.2"):
        store.layer_series(run_id, "lsb_density", 3)


@pytest.mark.parametrize("count,limit", [(0, 5), (1, 5), (5, 5), (6, 5), (10_000, 500), (10_001, 2), (7, 1)])
def test_downsampling_keeps_first_and_latest_and_at_most_n(count, limit):
    keep = evenly_spaced(count, limit)
    assert len(keep) <= limit and keep == sorted(set(keep))
    if count:
        assert keep[-1] == count - 1 and (limit == 1 or keep[0] == 0)
    if count <= limit:
        assert keep == list(range(count))


def test_series_reads_downsample_long_runs(tmp_path):
    store = RunStore(tmp_path)
    run_id = make_run(store, layers=2)
    writer = RunWriter(store, run_id)
    for step in range(1, 3001):
        writer.add_scalars(step, step // 100, {"loss": 1.0 / step, "lr": 0.1})
        writer.add_vectors(step, step // 100, {"bits": [8.0, 4.0]})
    writer.flush()
    loss = store.scalar_series(run_id, "loss", max_points=100)["loss"]
    assert len(loss["step"]) <= 100 and loss["step"][0] == 1 and loss["step"][-1] == 3000
    assert loss["value"][-1] == pytest.approx(1 / 3000)
    matrix = store.layer_matrix(run_id, "bits", max_steps=50)
    assert matrix.n_steps <= 50 and matrix.steps[0] == 1 and matrix.steps[-1] == 3000
    assert set(store.scalar_series(run_id)) == {"loss", "lr"}
    assert store.latest_scalars(run_id)["loss"]["step"] == 3000
    assert store.latest_scalar(run_id, "loss") == store.latest_scalars(run_id)["loss"]
    assert store.latest_scalar(run_id, "never logged") is None


def test_has_run_says_whether_a_run_is_stored_and_refuses_a_malformed_id(tmp_path):
    store = RunStore(tmp_path)
    run_id = make_run(store)
    assert store.has_run(run_id) and not store.has_run("20990101-000000-abcdef")
    with pytest.raises(RunStoreError, match="invalid run id"):
        store.has_run("../x")


@pytest.mark.parametrize("bad", BAD_IDS)
def test_malformed_run_ids_are_refused_before_anything_is_written(tmp_path, bad):
    store = RunStore(tmp_path)
    make_run(store)
    before = table_counts(store.path)
    calls = [lambda: store.run(bad), lambda: store.scalar_series(bad), lambda: store.layer_matrix(bad, "bits"),
             lambda: store.add_control(bad, "stop"), lambda: store.update_run(bad, status="failed"),
             lambda: store.set_layers(bad, []), lambda: store.events(bad), lambda: RunWriter(store, bad)]
    if bad is not None:   # None asks create_run for a fresh id
        calls.append(lambda: store.create_run(CONFIG, run_id=bad))
    for call in calls:
        with pytest.raises(RunStoreError, match="invalid run id .* looks like 20261123-120000-a1b2c3"):
            call()
    assert table_counts(store.path) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["msq.db", "msq.db-shm", "msq.db-wal"]


def test_unknown_run_id_says_where_to_find_ids(tmp_path):
    store = RunStore(tmp_path)
    before = table_counts(store.path)
    with pytest.raises(RunStoreError, match=r"no run '20990101-000000-abcdef' in .*msq\.db: see `python -m msq runs"):
        store.add_control("20990101-000000-abcdef", "stop")
    assert table_counts(store.path) == before


def test_missing_store_is_not_created_by_commands_about_existing_runs(tmp_path):
    with pytest.raises(RunStoreError, match="no run store at .*pass the --home"):
        RunStore(tmp_path / "typo", create=False)
    assert not (tmp_path / "typo").exists()


def test_controls_are_taken_once_in_order(tmp_path):
    store = RunStore(tmp_path)
    run_id = make_run(store)
    store.add_control(run_id, "lam", 2.5)
    store.add_control(run_id, "stop", "enough")
    assert store.take_controls(run_id, step=7) == [("lam", 2.5), ("stop", "enough")]
    assert store.take_controls(run_id) == []
    assert [(c["key"], c["step"]) for c in store.controls(run_id)] == [("lam", 7), ("stop", 7)]


def test_status_compare_and_set_and_run_list_headlines(tmp_path):
    store = RunStore(tmp_path)
    run_id = make_run(store)
    assert not store.update_run(run_id, expect_status=("running",), status="failed")
    assert store.update_run(run_id, expect_status=("queued",), status="running", started=100.0)
    writer = RunWriter(store, run_id)
    writer.add_scalars(5, 1, {"loss": 0.5, "val_acc": 91.0, "compression": 4.0, "avg_bits": 8.0})
    writer.add_event(5, 1, "lam_change", {"old": 8.0, "new": 16.0, "source": "control"})
    writer.flush()
    row = store.list_runs(status="running")[0]
    assert (row["lam"], row["val_acc"], row["compression"], row["avg_bits"], row["step"]) == (16.0, 91.0, 4.0, 8.0, 5)
    writer.finish("completed", {"final_acc": 93.5, "compression": 5.0, "average_bits": 6.4, "x": float("nan"),
                                "layers": [{"fqn": "l1", "bits": 3}]}, None)
    row = store.list_runs(model="tinycnn")[0]
    assert (row["status"], row["val_acc"], row["compression"], row["avg_bits"]) == ("completed", 93.5, 5.0, 6.4)
    assert store.run(run_id)["summary"]["x"] is None                    # NaN stored as JSON null
    assert [l["bits"] for l in store.layers(run_id)] == [8, 3, 8, 8]
    assert store.list_runs(status=["failed", "queued"]) == []
    with pytest.raises(RunStoreError, match="status 'done' is invalid: allowed queued, running"):
        store.update_run(run_id, status="done")


def test_resume_truncation_drops_rows_after_the_checkpoint(tmp_path):
    store = RunStore(tmp_path)
    run_id = make_run(store)
    writer = RunWriter(store, run_id)
    for step in range(1, 21):
        writer.add_scalars(step, 0, {"loss": float(step)})
        writer.add_vectors(step, 0, {"bits": [8.0] * 4})
        if step in (5, 10, 15):
            writer.add_event(step, 0, "prune", {"step": step})
        if step in (8, 12):
            writer.add_event(step, 0, "resume", {"checkpoint_step": step})
    writer.flush()
    writer.truncate_after(10, keep_events=2)
    assert store.scalar_series(run_id, "loss", max_points=None)["loss"]["step"] == list(range(1, 11))
    assert store.layer_matrix(run_id, "bits", max_steps=None).steps == list(range(1, 11))
    assert [(e["step"], e["kind"]) for e in store.events(run_id)] == [(5, "prune"), (8, "resume"), (10, "prune")]
    for step in range(11, 13):                 # the resumed attempt continues; a rewritten step stays single
        writer.add_scalars(step, 0, {"loss": float(step)})
    writer.add_scalars(12, 0, {"loss": 12.0})
    writer.flush()
    assert store.scalar_series(run_id, "loss", max_points=None)["loss"]["step"] == list(range(1, 13))


def test_delete_run_removes_its_rows_but_not_a_running_one(tmp_path):
    store = RunStore(tmp_path)
    keep, gone = make_run(store), make_run(store)
    for run_id in (keep, gone):
        writer = RunWriter(store, run_id)
        writer.add_scalars(1, 0, {"loss": 1.0})
        writer.flush()
    store.update_run(keep, status="running")
    with pytest.raises(RunStoreError, match="is running: stop it first"):
        store.delete_run(keep)
    store.delete_run(gone)
    assert [r["id"] for r in store.list_runs()] == [keep]
    assert table_counts(store.path)["scalars"] == 1 and table_counts(store.path)["layers"] == 4


def test_duration_counts_each_attempts_running_time_not_the_time_stopped_between(tmp_path):
    from msq.runs.ownership import claim, requeue
    store = RunStore(tmp_path)
    run_id = store.create_run(CONFIG, name="t")
    with store.write() as conn:     # ran 10 s, then stopped for an hour
        assert claim(conn, run_id, 1, "cpu", "here")
        conn.execute("UPDATE runs SET status = 'stopped', started = 1000, attempt_started = 1000, ended = 1010 "
                     "WHERE id = ?", (run_id,))
        assert requeue(conn, run_id) == 2
    assert store.run(run_id)["duration"] == pytest.approx(10.0)      # queued again: the first attempt only
    with store.write() as conn:     # the resumed attempt runs 5 s more
        assert claim(conn, run_id, 2, "cpu", "here")
        conn.execute("UPDATE runs SET status = 'completed', attempt_started = 4610, ended = 4615 WHERE id = ?",
                     (run_id,))
    assert store.run(run_id)["duration"] == pytest.approx(15.0)
    assert store.list_runs()[0]["duration"] == pytest.approx(15.0)
