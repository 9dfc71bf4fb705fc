"""The one training loop: phases of epochs of steps, events to callbacks, a checkpoint every epoch
(the last two kept), and one more where a stop is handled (what export packs).

    trainer = Trainer(RunConfig(), callbacks=[ConsoleProgress()], run_dir="runs/demo")
    summary = trainer.fit()

The loop is the same for every method; what a method does in it are hooks (msq/methods/base.py): MSQ
runs pretrain (float) -> search (λ·R on, LSB pruning) -> finetune (λ off, bits frozen).
"""
from __future__ import annotations

import itertools
import sys
import time
from pathlib import Path
from typing import Optional

import torch

from msq.config import RunConfig
from msq.data import example_input, make_loader
from msq.errors import ConfigError, TrainingDivergedError
from msq.quant import quant_layers, set_mode_
from msq.quant.inventory import layer_inventory
from msq.training.callbacks import Callback, CallbackList
from msq.runs.checkpoint_files import remove_temporaries, resume_candidates
from msq.runs.controls import check_lam
from msq.runs.disk import disk_full_reason, is_disk_full
from msq.training.checkpoint import (CHECKPOINT_NAME, PREVIOUS_NAME, STOP_NAME, load_first_readable, save_checkpoint,
                                     set_aside)
from msq.training.evaluate import evaluate
from msq.methods import create_method, get_method, methods_where
from msq.training.schedule import Phase, lr_at
from msq.training.preflight import run_warnings
from msq.training.setup import build_model_and_data, make_optimizer, resolve_device, seed_everything
from msq.training.distributed import (all_reduce_sum, broadcast_parameters_, init_distributed, sync_controls,
                                      wrap_for_training)
from msq.training.state import TrainState
from msq.training.summary import accounting_totals, build_summary



class Trainer:
    def __init__(self, cfg: RunConfig, callbacks: Optional[list[Callback]] = None,
                 run_dir: Optional[str | Path] = None, resume: bool = False) -> None:
        self.cfg = cfg
        self.callbacks = CallbackList(callbacks)
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.dist, self.device = init_distributed(resolve_device(cfg.train.device))
        if self.dist.enabled and not get_method(cfg.method).data_parallel:
            raise ConfigError(f"run.method = {cfg.method!r} cannot train with several processes yet: allowed "
                              f"{', '.join(methods_where(lambda spec: spec.data_parallel))} with train.nproc > 1; "
                              "use train.nproc = 1")
        if cfg.train.threads:
            torch.set_num_threads(cfg.train.threads)
        seed_everything(cfg.train.seed)
        self.model, self.data = build_model_and_data(cfg)
        self.method = create_method(cfg)
        self.method.prepare(self)
        self.model.to(self.device)
        broadcast_parameters_(self.dist, self.model)
        self.train_model = wrap_for_training(self.model, self.dist, self.device, cfg)
        self.layers = layer_inventory(self.model, self.example_input())
        self.warnings = run_warnings(self.model, cfg)   # events once started
        self.phases: list[Phase] = self.method.phases()
        self.state = TrainState(lam=cfg.reg.lam)
        self.timings: dict[str, float] = {}
        self.optimizer: Optional[torch.optim.Optimizer] = None
        self.latest_sensitivity = None
        self.resumed = False
        self.resumed_from: Optional[Path] = None
        self._pending_optimizer_state = None
        self.current_lr = 0.0
        if resume:
            self._load_checkpoint()

    # -- public controls (callbacks use these) -------------------------------------------------
    def request_stop(self, reason: str = "stop requested") -> None:
        if not self.state.stop_requested:
            self.state.stop_requested, self.state.stop_reason = True, reason

    def set_lam(self, value: float, source: str = "user") -> None:
        """Change λ from the next step on (``check_lam``: a ConfigError if out of range); logged as a
        "lam_change" event."""
        old, self.state.lam = self.state.lam, check_lam(value)
        self.emit_event("lam_change", {"old": old, "new": self.state.lam, "source": source})

    def emit_event(self, kind: str, payload: dict) -> None:
        self.state.events.append({"kind": kind, "step": self.state.step, "epoch": self.state.epoch, **payload})
        self.callbacks.on_event(self, kind, payload)

    def log_layer_metrics(self, metrics: dict) -> None:
        self.callbacks.on_log(self, metrics)

    # -- the loop --------------------------------------------------------------------------------
    def fit(self) -> dict:
        """Run every remaining phase. Always ends with ``on_run_end``; re-raises unexpected errors."""
        status, error = "completed", None
        self._clear_stale_files()
        self.callbacks.on_run_start(self)
        for message in self.warnings:
            self.emit_event("warning", {"message": message})
        try:
            self._run_phases()
            if self.state.stop_requested:
                status = "stopped"
                self.emit_event("stop", {"reason": self.state.stop_reason})
        except TrainingDivergedError as exc:
            status, error = "failed", str(exc)
        except BaseException as exc:
            status, error = "failed", (disk_full_reason(exc, self.run_dir or ".") if is_disk_full(exc)
                                       else f"{type(exc).__name__}: {exc}")
            self._finish(status, error)
            raise
        return self._finish(status, error)

    def _finish(self, status: str, error: Optional[str]) -> dict:
        self.summary = build_summary(self, status, error)
        self.callbacks.on_run_end(self, status, self.summary, error)
        return self.summary

    def _run_phases(self) -> None:
        while self.state.phase_index < len(self.phases) and not self.state.stop_requested:
            phase = self.phases[self.state.phase_index]
            if phase.epochs > 0:
                self._run_phase(phase)
            if self.state.stop_requested:
                return
            if phase.name == "pretrain" and phase.epochs > 0:
                self.state.float_acc = self.state.last_val_acc
            self.state.phase_index += 1
            self.state.phase_epoch, self.state.phase_step = 0, 0
            self._pending_optimizer_state = None

    def _run_phase(self, phase: Phase) -> None:
        # Enter the phase: modes and scales, a fresh optimizer (or the checkpoint's, on resume).
        self.state.phase = phase.name
        self.method.on_phase_start(self, phase)
        if self.state.float_acc is None and phase.quantized:
            self.state.float_acc = self._float_accuracy()
        self.optimizer = make_optimizer(self.model, self.cfg.train, phase.lr)
        if self._pending_optimizer_state is not None:
            self.optimizer.load_state_dict(self._pending_optimizer_state)
        else:
            self.emit_event("phase", {"phase": phase.name, "epochs": phase.epochs})
        self.callbacks.on_phase_start(self, phase.name)
        started = self._epoch_started = time.perf_counter()
        for phase_epoch in range(self.state.phase_epoch, phase.epochs):
            self.run_epoch(phase)
            if self.state.stop_requested:
                self._evaluate()
                self._save_stop_checkpoint()
                break
            self._end_epoch(phase, phase_epoch)
        self.timings[phase.name] = self.timings.get(phase.name, 0.0) + time.perf_counter() - started

    def rebuild_optimizer(self) -> None:
        """A fresh optimizer over the current parameters (for methods whose tensors change shape)."""
        phase = self.phases[self.state.phase_index]
        self.optimizer = make_optimizer(self.model, self.cfg.train, phase.lr)

    def run_epoch(self, phase: Phase) -> None:
        """One training epoch: the method's batches, its step, one optimizer step each."""
        self.method.start_epoch(self, phase)     # before train(): it may score the data in eval mode
        try:
            self.model.train()
            batches, steps_per_epoch = self.method.epoch_batches(self, phase)
            phase_steps = phase.epochs * steps_per_epoch
            sums = {"loss": 0.0, "correct": 0, "seen": 0}
            for batch in batches:
                if self.state.stop_requested:
                    return
                self._sync_controls()
                if self.state.stop_requested:
                    return
                lr = self.current_lr = lr_at(phase, self.state.phase_step, phase_steps)
                for group in self.optimizer.param_groups:
                    group["lr"] = lr
                self.optimizer.zero_grad(set_to_none=True)
                # forward and backward (default: task loss + the method's regularizer, MSQ: λ · Σ m_l ||LSB_l||_1 / N_l)
                step = self.method.train_step(self, phase, batch)
                self.optimizer.step()
                self.method.after_step(self, phase)
                sums["loss"] += step.loss_sum
                sums["correct"] += step.correct
                sums["seen"] += step.seen
                self.finish_step(phase, {"loss": step.loss, "task_loss": step.task_loss, "reg": step.reg, "lr": lr,
                                         **step.extra})
            self.state.train_loss = sums["loss"] / max(sums["seen"], 1)
            self.state.train_acc = 100.0 * sums["correct"] / max(sums["seen"], 1)
        finally:
            self.method.finish_epoch(self, phase)

    def check_finite(self, loss: torch.Tensor, phase: Phase, where: Optional[str] = None, hint: Optional[str] = None,
                     detail: Optional[dict] = None) -> None:
        """Stop the run (a "nan" event, TrainingDivergedError) when the loss is not finite."""
        if torch.isfinite(loss):
            return
        bad = float(loss.detach())
        self.emit_event("nan", {"phase": phase.name, "loss": bad, **(detail or {})})
        raise TrainingDivergedError(
            f"the loss became {bad} at step {self.state.step} ({where or phase.name + ' phase'}, epoch {self.state.epoch}); "
            + (hint or f"lower train.lr (now {self.current_lr:g}) or reg.lam (now {self.state.lam:g})"))

    def finish_step(self, phase: Phase, scalars: dict) -> None:
        """Count the step, tell the callbacks, log per-layer signals every ``log_every`` steps."""
        self.state.step += 1
        self.state.phase_step += 1
        scalars.setdefault("lam", self.state.lam_effective if phase.regularize else 0.0)
        self.callbacks.on_step_end(self, scalars)
        if self.state.step % self.cfg.train.log_every == 0:
            self.log_layer_metrics(self.method.layer_metrics(self))

    def _end_epoch(self, phase: Phase, phase_epoch: int) -> None:
        val = self._evaluate()
        self.method.end_of_epoch(self, phase, phase_epoch)
        self.state.epoch += 1
        self.state.phase_epoch = phase_epoch + 1
        bits = [float(layer.bits) for _, layer in quant_layers(self.model)]
        self.state.bit_history.append({"epoch": self.state.epoch, "step": self.state.step, "bits": bits})
        totals = accounting_totals(self)
        self.callbacks.on_epoch_end(self, {
            "val_acc": val["acc"], "val_loss": val["loss"], "train_loss": self.state.train_loss,
            "train_acc": self.state.train_acc, "avg_bits": totals["average_bits"],
            "compression": totals["compression"], "epoch_seconds": time.perf_counter() - self._epoch_started,
            "lam": self.state.lam if phase.regularize else 0.0, **self.method.epoch_scalars(self, val)})
        self._epoch_started = time.perf_counter()
        self._save_checkpoint()

    def _evaluate(self) -> dict:
        started = time.perf_counter()
        val = self.method.evaluate(self)
        self.timings["eval"] = self.timings.get("eval", 0.0) + time.perf_counter() - started
        self.state.last_val_acc, self.state.last_val_loss = val["acc"], val["loss"]
        return val

    def _float_accuracy(self) -> float:
        """Accuracy of the float weights (used when pretraining was skipped)."""
        modes = {name: layer.mode for name, layer in quant_layers(self.model)}
        set_mode_(self.model, "float")
        try:
            return evaluate(self.model, self.val_loader(), self.device)["acc"]
        finally:
            for name, layer in quant_layers(self.model):
                layer.mode = modes[name]

    # -- data ------------------------------------------------------------------------------------
    def train_loader(self, epoch: int):
        """This rank's share of the epoch's global batches of ``train.batch_size``."""
        return make_loader(self.data.train, self.cfg.train.batch_size, shuffle=True,
                           seed=self.cfg.train.seed, epoch=epoch, shard=(self.dist.rank, self.dist.world))

    def val_loader(self, sharded: bool = False):
        shard = (self.dist.rank, self.dist.world) if sharded else (0, 1)
        return make_loader(self.data.val, 512, shuffle=False, seed=0, shard=shard)

    def fixed_batches(self, count: int, batch_size: int, seed: int) -> list:
        """``count`` training batches drawn by ``seed`` (the Hessian estimate's data); with several
        ranks each gets different ones, so together they cover world x the data."""
        loader = make_loader(self.data.train, batch_size, shuffle=True, seed=self.cfg.train.seed + 7919,
                             epoch=seed * self.dist.world + self.dist.rank)
        return list(itertools.islice(iter(loader), count))

    def evaluate_model(self) -> dict:
        """Validation accuracy and loss; with several ranks each scores a shard and the counts are summed."""
        if not self.dist.enabled:
            return evaluate(self.model, self.val_loader(), self.device)
        part = evaluate(self.model, self.val_loader(sharded=True), self.device)
        correct, total, loss_sum = all_reduce_sum(self.dist, [part["correct"], part["total"], part["loss_sum"]])
        return {"acc": 100.0 * correct / max(total, 1), "loss": loss_sum / max(total, 1),
                "correct": int(correct), "total": int(total), "loss_sum": loss_sum}

    def _sync_controls(self) -> None:
        """Every rank follows rank 0's stop requests and λ (rank 0 alone reads the store)."""
        if self.dist.enabled:
            stop, lam = sync_controls(self.dist, self.state.stop_requested, self.state.lam)
            if stop and not self.state.stop_requested:
                self.request_stop("stop requested on rank 0")
            self.state.lam = lam

    def example_input(self) -> torch.Tensor:
        return example_input(self.data, batch=1).to(self.device)

    # -- checkpoints -----------------------------------------------------------------------------
    def _checkpoint_payload(self) -> dict:
        return {
            "config": self.cfg.to_dict(), "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict() if self.optimizer else None,
            "state": self.state.to_dict(), "method": self.method.state_dict(), "timings": dict(self.timings),
            "rng": torch.get_rng_state(),
        }

    def _writes_checkpoints(self) -> bool:
        return self.run_dir is not None and self.dist.is_main

    def _save_checkpoint(self) -> None:
        """The epoch end: checkpoint.pt, the one it replaces kept as checkpoint.prev.pt."""
        if not self._writes_checkpoints():
            return
        self.run_dir.mkdir(parents=True, exist_ok=True)
        save_checkpoint(self.run_dir / CHECKPOINT_NAME, self._checkpoint_payload(), previous=self.run_dir / PREVIOUS_NAME)

    def _save_stop_checkpoint(self) -> None:
        """The model where the stop was handled, for export and the report (resume restarts the epoch
        from checkpoint.pt). A stop still ends as stopped when this cannot be written."""
        if not self._writes_checkpoints():
            return
        try:
            save_checkpoint(self.run_dir / STOP_NAME, self._checkpoint_payload())
        except OSError as exc:
            print(f"warning: could not write {self.run_dir / STOP_NAME} ({exc.strerror or exc}); export packs "
                  f"{CHECKPOINT_NAME}, the last epoch end", file=sys.stderr, flush=True)

    def _clear_stale_files(self) -> None:
        """Training (again): a stop snapshot no longer describes the run, and temporaries of an
        interrupted write are garbage."""
        if self._writes_checkpoints() and self.run_dir.is_dir():
            (self.run_dir / STOP_NAME).unlink(missing_ok=True)
            remove_temporaries(self.run_dir)

    def _load_checkpoint(self) -> None:
        if self.run_dir is None:
            return
        found = load_first_readable(resume_candidates(self.run_dir), map_location=self.device,
                                    what=f"cannot resume from {self.run_dir}")
        if found is None:
            return  # nothing was saved yet: start from the beginning
        payload, path = found
        if path.name != CHECKPOINT_NAME and (self.run_dir / CHECKPOINT_NAME).exists() and self.dist.is_main:
            set_aside(self.run_dir / CHECKPOINT_NAME)   # so the next save keeps the good one as previous
        self.method.restore(self.model, payload)
        self.state = TrainState.from_dict(payload["state"])
        self.timings = dict(payload.get("timings", {}))
        torch.set_rng_state(payload["rng"].cpu())
        if self.state.phase_epoch > 0:  # resumed inside a phase: keep its optimizer state
            self._pending_optimizer_state = payload["optimizer"]
        self.layers = layer_inventory(self.model, self.example_input())
        self.resumed, self.resumed_from = True, path
