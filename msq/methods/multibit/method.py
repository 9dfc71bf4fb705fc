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

from msq.data import make_loader
from msq.data.loader import mix_seed
from msq.methods.multibit import coreset as cs
from msq.methods.multibit.calibrate import calibrate_grids_
from msq.methods.multibit.evaluate import accuracy
from msq.methods.multibit.layers import prepare_multibit_, set_width_, switchable_batchnorms
from msq.quant import quant_layers
from msq.methods.base import Method, StepResult
from msq.training.schedule import Phase

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
        self._started = None                                       # (wall, cpu) when the epoch's steps began

    # -- setup -----------------------------------------------------------------------------------
    def prepare_model(self, model, example) -> None:
        prepare_multibit_(model, self.cfg, example)

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

    # -- training: the loop's hooks --------------------------------------------------------------
    def start_epoch(self, trainer: "Trainer", phase: Phase) -> None:
        if not phase.quantized:
            return
        self.epoch_seconds = {"scoring": 0.0, "training": 0.0}
        if not self.full_data and (cs.is_reselect_epoch(trainer.state.phase_epoch, self.mb.reselect_every)
                                   or not self.coresets):
            self.select(trainer)
        self._started = (time.perf_counter(), time.process_time())

    def finish_epoch(self, trainer: "Trainer", phase: Phase) -> None:
        if not phase.quantized or self._started is None:
            return
        set_width_(trainer.model, max(self.widths))
        started, cpu = self._started
        self._started = None
        self._add_time(trainer, "training", time.perf_counter() - started, time.process_time() - cpu)

    def epoch_batches(self, trainer: "Trainer", phase: Phase):
        """Every width's batch of the step, zipped (widest first)."""
        if not phase.quantized:
            return super().epoch_batches(trainer, phase)
        loaders = self._loaders(trainer)
        return zip(*loaders), len(loaders[0])

    def _loaders(self, trainer: "Trainer") -> list:
        seed, epoch, data = self.cfg.train.seed, trainer.state.epoch, trainer.data.train
        if self.full_data:   # the classic multi-bit baseline: every width on the same full-data batches
            return [make_loader(data, self.cfg.train.batch_size, True, seed, epoch)] * len(self.widths)
        return [make_loader(Subset(data, self.coresets[b]), self.cfg.train.batch_size, True,
                            mix_seed(seed, 1009 * b), epoch) for b in self.widths]

    def train_step(self, trainer: "Trainer", phase: Phase, batch) -> StepResult:
        """For each width b (widest first): set it, forward b's batch, backward loss_b / |bits|."""
        if not phase.quantized:
            return super().train_step(trainer, phase, batch)
        model, device = trainer.model, trainer.device
        scalars, loss_sum, correct, seen = {}, 0.0, 0, 0
        for b, (x, y) in zip(self.widths, batch):
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            set_width_(model, b)
            logits = model(x)
            loss = F.cross_entropy(logits, y)
            trainer.check_finite(loss, phase, where=f"{b}-bit width", detail={"bits": b},
                                 hint=f"lower train.lr (now {trainer.current_lr:g}) or drop the narrowest width")
            (loss / len(self.widths)).backward()      # gradients of all widths accumulate
            scalars[f"loss_b{b}"] = float(loss.detach())
            loss_sum += scalars[f"loss_b{b}"] * y.numel()
            correct += int((logits.detach().argmax(1) == y).sum())
            seen += y.numel()
        mean = sum(scalars.values()) / len(scalars)
        set_width_(model, max(self.widths))              # per-layer logs describe the widest model
        return StepResult(loss=mean, task_loss=mean, extra=scalars, loss_sum=loss_sum, correct=correct, seen=seen)

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
        from msq.methods.multibit.summary import multibit_summary
        return {"multibit": multibit_summary(self, trainer)}

    def deployed_size_bytes(self, model) -> float:
        """One BatchNorm per layer and the correction's (gain, offset) pairs count too."""
        from msq.methods.multibit.evaluate import size_stats
        return size_stats(model)["size_bytes"]

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
