"""Progress on a terminal: one bar per phase on a TTY, one line per epoch otherwise."""
from __future__ import annotations

import sys
import time

from msq.training.callbacks import Callback


class ConsoleProgress(Callback):
    def __init__(self, stream=None, bar: bool = True) -> None:
        self.stream = stream or sys.stderr
        self.bar = bar
        self._phase_started = time.perf_counter()

    def _write(self, text: str) -> None:
        self.stream.write(text)
        self.stream.flush()

    def on_phase_start(self, trainer, phase: str) -> None:
        self._phase_started = time.perf_counter()
        self._steps_in_phase = trainer.phases[trainer.state.phase_index].epochs * len(trainer.train_loader(0))
        self._first_step = trainer.state.phase_step

    def on_step_end(self, trainer, scalars: dict) -> None:
        if not self.bar:
            return
        done = trainer.state.phase_step
        total = max(self._steps_in_phase, 1)
        elapsed = time.perf_counter() - self._phase_started
        rate = (done - self._first_step) / elapsed if elapsed > 0 else 0.0
        eta = (total - done) / rate if rate > 0 else 0.0
        filled = int(24 * done / total)
        self._write(f"\r{trainer.state.phase:<9} [{'#' * filled}{'.' * (24 - filled)}] {done}/{total} "
                    f"loss {scalars['loss']:.4f} eta {eta:5.0f}s ")

    def on_epoch_end(self, trainer, scalars: dict) -> None:
        prefix = "\r" if self.bar else ""
        self._write(f"{prefix}{trainer.state.phase:<9} epoch {trainer.state.epoch:>3}  val acc "
                    f"{scalars['val_acc']:6.2f}%  loss {scalars['train_loss']:.4f}  avg bits "
                    f"{scalars['avg_bits']:.2f}  {scalars['compression']:5.2f}x" + " " * 20 + "\n")

    def on_event(self, trainer, kind: str, payload: dict) -> None:
        if kind == "prune":
            self._write(f"\r  prune {payload['fqn']}: {payload['old_bits']} -> {payload['new_bits']} bits "
                        f"(LSB density {payload['density']:.3f})" + " " * 30 + "\n")
        elif kind == "lam_change":
            self._write(f"\r  λ {payload['old']:g} -> {payload['new']:g} ({payload['source']})\n")
        elif kind == "stop":
            self._write(f"\r  stopped: {payload.get('reason', '')}\n")
