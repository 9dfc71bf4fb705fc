"""A stand-in worker for the concurrency tests: writes STEPS steps of scalars and per-layer vectors
to one run through RunWriter, the way StoreCallback does, with short flush and checkpoint intervals so
many small transactions compete. Usage: python write_steps.py HOME RUN_ID STEPS LAYERS"""
import sys
import time

from msq.runs import RunStore, RunWriter


def main(home: str, run_id: str, steps: int, layers: int) -> None:
    store = RunStore(home)
    writer = RunWriter(store, run_id, flush_every=0.02, heartbeat_every=0.1, checkpoint_every=0.3)
    for step in range(1, steps + 1):
        writer.add_scalars(step, step // 100, {"loss": 1.0 / step, "task_loss": 0.5, "reg": 0.1, "lam": 1.0,
                                               "lr": 0.01})
        writer.add_vectors(step, step // 100, {"lsb_density": [step + i / 1000 for i in range(layers)]})
        if step % 250 == 0:
            writer.add_event(step, step // 100, "prune", {"step": step})
            store.take_controls(run_id, step)
        if writer.due():
            writer.flush()
        time.sleep(0.0005)
    writer.finish("completed", {"steps_done": steps}, None)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
