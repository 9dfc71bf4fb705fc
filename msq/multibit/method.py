"""``--method multibit``: one set of float weights trained to work at every width in ``multibit.bits``.

Phases: "pretrain" (float, ``train.pretrain_epochs``) then "multibit" (``train.search_epochs +
train.finetune_epochs`` epochs, lr ``train.search_lr or train.lr`` with cosine decay; the same
budget and schedule as uniform QAT, so the two compare at equal epochs). No separate finetune:
every width is already trained at the end, and a finetune on full data would spend exactly the time
the coreset saves. When the multibit phase starts, the shared grids are calibrated once
(``calibrate.py``: weight scales and activation clips that suit all widths, not max|W|).

One multi-bit step = for each width b (widest first): set the width, forward a batch of b's own data,
backward loss_b / |bits| (gradients accumulate on the shared weights; dividing keeps ``train.lr``
meaning what it means for one network); then one optimizer step. With ``coreset_fraction < 1`` the
batches of width b come from its coreset S_b (re-selected every ``reselect_every`` epochs by scores
from the b-bit model, timed as training); with 1.0 every width sees the same full-data batches.

Logged (names the dashboard reads):
  per step    loss_b{b} for each trained width (besides loss, task_loss, reg, lam, lr)
  per epoch   acc_b{b}, loss_b{b} at trained and unseen widths; acc_unseen_mean; val_acc = mean over
              trained widths; coreset_size_b{b}; coreset_overlap (mean pairwise Jaccard of the
              widths' subsets); coreset_kept_b{b} (Jaccard with b's previous subset);
              score_b{b}_{mean,q10,q50,q90}; scoring_seconds, training_seconds (this epoch, wall)
  events      "calibration" (chosen scales/clips), "coreset" (each selection: sizes, overlap, seconds)
  result.json "multibit" section (summary.py); timings coreset_scoring, multibit_steps (+ "_cpu")
"""
from __future__ import annotations

import time
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch.utils.data import Subset

from msq.data import example_input, make_loader
from msq.data.loader import mix_seed
from msq.errors import TrainingDivergedError
from msq.multibit import coreset as cs
from msq.multibit.calibrate import calibrate_grids_
from msq.multibit.evaluate import accuracy
from msq.multibit.layers import prepare_multibit_, set_width_, switchable_batchnorms
from msq.quant import quant_layers
from msq.training.methods import Method
from msq.training.schedule import Phase, lr_at

if TYPE_CHECKING:  # pragma: no cover
    from msq.training.trainer import Trainer

CALIBRATION_IMAGES = 256      # training images whose layer inputs choose the activation clips


class MultiBitMethod(Method):
    name = "multibit"

    def __init__(self, cfg) -> None:
        super().__init__(cfg)
        self.mb = cfg.multibit
        self.widths = sorted(self.mb.bits, reverse=True)          # widest first
        self.unseen = sorted(b for b in self.mb.eval_bits if b not in self.mb.bits)
        self.calibrated = False                                   # grids and per-width BNs set up
        self.coresets: dict[int, torch.Tensor] = {}
        self.selections = 0
        self.stats: dict[str, float] = {}                          # the latest selection's statistics
        self.epoch_seconds = {"scoring": 0.0, "training": 0.0}
        self.last_eval: dict[int, dict] = {}

    # -- setup -----------------------------------------------------------------------------------
    def phases(self) -> list[Phase]:
        t = self.cfg.train
        return [Phase("pretrain", t.pretrain_epochs, t.lr, "cosine", quantized=False),
                Phase("multibit", t.search_epochs + t.finetune_epochs, t.search_lr or t.lr, "cosine")]

    def prepare(self, trainer: "Trainer") -> None:
        prepare_multibit_(trainer.model, self.cfg, example_input(trainer.data, batch=2))

    def on_phase_start(self, trainer: "Trainer", phase: Phase) -> None:
        super().on_phase_start(trainer, phase)      # the first quantized phase sets s = max|W| once
        if phase.quantized and not self.calibrated:
            for bn in switchable_batchnorms(trainer.model):   # per-width BNs start from the float one
                bn.copy_widest_to_all_()
            if self.mb.calibration == "mse":
                batch = trainer.fixed_batches(1, CALIBRATION_IMAGES, seed=0)[0][0].to(trainer.device)
                chosen = calibrate_grids_(trainer.model, sorted(self.widths), batch)
                trainer.emit_event("calibration", {"layers": chosen})
            self.calibrated = True

    @property
    def full_data(self) -> bool:
        return self.mb.coreset_fraction >= 1.0

    # -- training --------------------------------------------------------------------------------
    def train_epoch(self, trainer: "Trainer", phase: Phase) -> None:
        if not phase.quantized:
            return trainer.run_standard_epoch(phase)
        self.epoch_seconds = {"scoring": 0.0, "training": 0.0}
        if not self.full_data and (cs.is_reselect_epoch(trainer.state.phase_epoch, self.mb.reselect_every)
                                   or not self.coresets):
            self.select(trainer)
        started, cpu = time.perf_counter(), time.process_time()
        try:
            self._steps(trainer, phase)
        finally:
            set_width_(trainer.model, max(self.widths))
            self._add_time(trainer, "training", time.perf_counter() - started, time.process_time() - cpu)

    def _loaders(self, trainer: "Trainer") -> list:
        seed, epoch, data = self.cfg.train.seed, trainer.state.epoch, trainer.data.train
        if self.full_data:   # the classic multi-bit baseline: every width on the same full-data batches
            return [make_loader(data, self.cfg.train.batch_size, True, seed, epoch)] * len(self.widths)
        return [make_loader(Subset(data, self.coresets[b]), self.cfg.train.batch_size, True,
                            mix_seed(seed, 1009 * b), epoch) for b in self.widths]

    def _steps(self, trainer: "Trainer", phase: Phase) -> None:
        model, device = trainer.model, trainer.device
        model.train()
        loaders = self._loaders(trainer)
        phase_steps = phase.epochs * len(loaders[0])
        sums = {"loss": 0.0, "correct": 0, "seen": 0}
        for batches in zip(*loaders):
            if trainer.state.stop_requested:
                return
            lr = lr_at(phase, trainer.state.phase_step, phase_steps)
            for group in trainer.optimizer.param_groups:
                group["lr"] = lr
            trainer.optimizer.zero_grad(set_to_none=True)
            scalars = {}
            for b, (x, y) in zip(self.widths, batches):
                x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
                set_width_(model, b)
                logits = model(x)
                loss = F.cross_entropy(logits, y)
                if not torch.isfinite(loss):
                    trainer.emit_event("nan", {"phase": phase.name, "loss": float(loss), "bits": b})
                    raise TrainingDivergedError(
                        f"the loss became {float(loss)} at step {trainer.state.step} ({b}-bit width, epoch "
                        f"{trainer.state.epoch}); lower train.lr (now {lr:g}) or drop the narrowest width")
                (loss / len(self.widths)).backward()      # gradients of all widths accumulate
                scalars[f"loss_b{b}"] = float(loss.detach())
                sums["loss"] += scalars[f"loss_b{b}"] * y.numel()
                sums["correct"] += int((logits.detach().argmax(1) == y).sum())
                sums["seen"] += y.numel()
            trainer.optimizer.step()
            mean = sum(scalars.values()) / len(scalars)
            set_width_(model, max(self.widths))              # per-layer logs describe the widest model
            trainer.finish_step(phase, {"loss": mean, "task_loss": mean, "reg": 0.0, "lr": lr, **scalars})
        trainer.state.train_loss = sums["loss"] / max(sums["seen"], 1)
        trainer.state.train_acc = 100.0 * sums["correct"] / max(sums["seen"], 1)

    # -- coresets --------------------------------------------------------------------------------
    def select(self, trainer: "Trainer") -> None:
        """Score the training set at every width and pick each width's coreset (timed as scoring)."""
        started, cpu = time.perf_counter(), time.process_time()
        model, data, previous = trainer.model, trainer.data.train, dict(self.coresets)
        stats: dict[str, float] = {}
        try:
            for b in self.widths:
                g = torch.Generator().manual_seed(mix_seed(self.cfg.train.seed, 7919 * trainer.state.epoch + b))
                if self.mb.score == "el2n":
                    set_width_(model, b)
                    scores = cs.el2n_scores(model, data, trainer.device, self.cfg.train.batch_size)
                else:
                    scores = cs.random_scores(len(data), g)
                self.coresets[b] = cs.select_coreset(scores, self.mb.coreset_fraction, self.mb.selection, g)
                stats[f"coreset_size_b{b}"] = float(self.coresets[b].numel())
                stats.update({f"score_b{b}_{k}": v for k, v in cs.score_summary(scores).items()})
                if b in previous:
                    stats[f"coreset_kept_b{b}"] = cs.jaccard(previous[b], self.coresets[b])
        finally:
            set_width_(model, max(self.widths))
        stats["coreset_overlap"] = cs.mean_pairwise_jaccard([self.coresets[b] for b in self.widths])
        self.selections += 1
        self.stats = stats
        seconds = time.perf_counter() - started
        self._add_time(trainer, "scoring", seconds, time.process_time() - cpu)
        trainer.emit_event("coreset", {"selection": self.selections, "seconds": seconds,
                                       "sizes": {str(b): int(self.coresets[b].numel()) for b in self.widths},
                                       "overlap": stats["coreset_overlap"]})

    def _add_time(self, trainer: "Trainer", kind: str, seconds: float, cpu_seconds: float) -> None:
        """Wall seconds, and process CPU seconds (steadier than wall time on a shared machine)."""
        self.epoch_seconds[kind] += seconds
        key = "coreset_scoring" if kind == "scoring" else "multibit_steps"
        trainer.timings[key] = trainer.timings.get(key, 0.0) + seconds
        trainer.timings[key + "_cpu"] = trainer.timings.get(key + "_cpu", 0.0) + cpu_seconds

    # -- evaluation and logging ------------------------------------------------------------------
    def evaluate_all(self, trainer: "Trainer") -> dict[int, dict]:
        """acc/loss at every trained and unseen width, on the validation split."""
        out = {}
        try:
            for b in self.widths + self.unseen:
                set_width_(trainer.model, b)
                out[b] = accuracy(trainer.model, trainer.data, trainer.device)
        finally:
            set_width_(trainer.model, max(self.widths))
        return out

    def evaluate(self, trainer: "Trainer") -> dict:
        if all(layer.mode == "float" for _, layer in quant_layers(trainer.model)):
            return super().evaluate(trainer)
        self.last_eval = self.evaluate_all(trainer)
        trained = [self.last_eval[b] for b in self.widths]
        val = {"acc": sum(r["acc"] for r in trained) / len(trained),
               "loss": sum(r["loss"] for r in trained) / len(trained)}
        for b, r in self.last_eval.items():
            val[f"acc_b{b}"], val[f"loss_b{b}"] = r["acc"], r["loss"]
        if self.unseen:
            val["acc_unseen_mean"] = sum(self.last_eval[b]["acc"] for b in self.unseen) / len(self.unseen)
        return val

    def epoch_scalars(self, trainer: "Trainer", val: dict) -> dict:
        if trainer.state.phase != "multibit":
            return {}
        out = {k: v for k, v in val.items() if k.startswith(("acc_", "loss_b"))}
        out.update(self.stats)
        out["scoring_seconds"] = self.epoch_seconds["scoring"]
        out["training_seconds"] = self.epoch_seconds["training"]
        return out

    def summary_extra(self, trainer: "Trainer") -> dict:
        from msq.multibit.summary import multibit_summary
        return {"multibit": multibit_summary(self, trainer)}

    # -- checkpoints -----------------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {**super().state_dict(), "calibrated": self.calibrated, "selections": self.selections,
                "coresets": {str(b): idx for b, idx in self.coresets.items()}, "stats": dict(self.stats)}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.calibrated = bool(state.get("calibrated", False))
        self.selections = int(state.get("selections", 0))
        self.coresets = {int(b): idx.cpu() for b, idx in state.get("coresets", {}).items()}
        self.stats = dict(state.get("stats", {}))
