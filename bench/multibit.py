"""Multi-bit training with EMQ's techniques, measured side by side in one run (not a test).

Same model, data, float starting point, epochs and seed for every variant:
  full      every width on all data each epoch, bias correction, one shared BatchNorm
  coreset   each width on its own 20% EL2N coreset (top-k, re-selected every 2 epochs), correction, shared BN
  weighted  the same with score-weighted sampling instead of top-k
  weighted_r4  (full mode only) weighted, re-selected every 4 epochs: scoring is what keeps 20% from 5x
  nocorr    full data, shared BatchNorm, NO bias correction
  perbn     full data, one BatchNorm per width, no correction (Any-Precision baseline)
  random    (full mode only) 20% random coresets: does EL2N beat chance?
Targets: coreset training time (scoring + steps) >= 3x faster than full; mean accuracy over the
trained widths within 1 point. Correction vs not at trained and unseen (5, 6, 7) widths.

Model: ``bn_cnn`` below, a 4-conv CNN with BatchNorm (the correction story is about BatchNorm;
lenet5/tinycnn have none, resnet20 takes ~100 s per width-epoch on mnist5k on 2 CPU cores).
Runs single-threaded; wall and process-CPU seconds are both printed (CPU is the steadier one when
others share the machine). One seed: at 2-3 bits the accuracy moves by several points between epochs
and seeds, so read small gaps in the mean with that in mind.

    python bench/multibit.py            # mnist5k, 3 float + 8 multi-bit epochs, all variants (~15 min)
    python bench/multibit.py --quick    # 3 float + 4 multi-bit epochs, five variants (~5 min)
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from msq.config import RunConfig  # noqa: E402
from msq.quant import restore_  # noqa: E402
from msq.training.trainer import Trainer  # noqa: E402


class BNCNN(nn.Module):
    """conv-BN-ReLU x4 (w, 2w, 2w, 4w channels; stride 2 in the 2nd and 4th) -> global pool -> fc.

    Strided convs instead of max-pooling: on CPU, max_pool2d took a third of an inference pass,
    which is the coreset scoring pass, and it has nothing to do with what is measured here.
    """

    def __init__(self, num_classes: int, in_channels: int, width: int):
        super().__init__()
        chans = [in_channels, width, 2 * width, 2 * width, 4 * width]
        strides = [1, 2, 1, 2]                                   # 28 -> 28 -> 14 -> 14 -> 7
        self.convs = nn.ModuleList(nn.Conv2d(a, b, 3, stride=s, padding=1, bias=False)
                                   for a, b, s in zip(chans, chans[1:], strides))
        self.bns = nn.ModuleList(nn.BatchNorm2d(c) for c in chans[1:])
        self.fc = nn.Linear(chans[-1], num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for conv, bn in zip(self.convs, self.bns):
            x = F.relu(bn(conv(x)))
        return self.fc(F.adaptive_avg_pool2d(x, 1).flatten(1))


def bn_cnn(num_classes: int = 10, in_channels: int = 1, image_size: int = 28, width: int = 16) -> nn.Module:
    """4-conv BatchNorm CNN, ~30k parameters at width 16."""
    return BNCNN(num_classes, in_channels, width)


MODEL = f"{Path(__file__).resolve()}:bn_cnn"

VARIANTS = {
    "full": {"multibit.coreset_fraction": 1.0},
    "coreset": {"multibit.coreset_fraction": 0.2},
    "weighted": {"multibit.coreset_fraction": 0.2, "multibit.selection": "weighted"},
    "weighted_r4": {"multibit.coreset_fraction": 0.2, "multibit.selection": "weighted", "multibit.reselect_every": 4},
    "nocorr": {"multibit.coreset_fraction": 1.0, "multibit.bias_correction": False},
    "perbn": {"multibit.coreset_fraction": 1.0, "multibit.bias_correction": False, "multibit.shared_bn": False},
    "random": {"multibit.coreset_fraction": 0.2, "multibit.score": "random"},
}


def base_config(args) -> RunConfig:
    return RunConfig.from_dict({
        "method": "multibit", "model": MODEL, "data": {"name": "mnist5k"},
        "train": {"pretrain_epochs": 0, "search_epochs": args.epochs, "finetune_epochs": 0, "batch_size": 64,
                  "lr": args.lr, "search_lr": args.lr, "threads": 1, "seed": 0, "log_every": 1000},
        "multibit": {"reselect_every": args.reselect_every},
    })


def pretrain(args, folder: Path) -> tuple[Path, float]:
    """Float training once; every variant starts from these weights."""
    cfg = base_config(args).replace(**{"train.pretrain_epochs": args.pretrain_epochs, "train.search_epochs": 0,
                                       "train.lr": 0.1})
    trainer = Trainer(cfg)
    summary = trainer.fit()
    path = folder / "float.pt"
    torch.save(restore_(trainer.model).state_dict(), path)
    return path, summary["float_acc"]


def run_variant(args, name: str, checkpoint: Path) -> dict:
    cfg = base_config(args).replace(checkpoint=str(checkpoint), **VARIANTS[name])
    started = time.perf_counter()
    summary = Trainer(cfg).fit()
    mb = summary["multibit"]
    t = mb["timings"]
    return {"name": name, "acc": {int(b): a for b, a in mb["acc_by_width"].items()},
            "trained": mb["trained_mean_acc"], "unseen": mb["unseen_mean_acc"], "bits": mb["bits"],
            "train_s": t["train_seconds_total"], "score_s": t["scoring_seconds"],
            "cpu_s": t["scoring_cpu_seconds"] + t["training_cpu_seconds"], "score_cpu_s": t["scoring_cpu_seconds"],
            "wall_s": time.perf_counter() - started}


def report(rows: list[dict], float_acc: float) -> None:
    widths = sorted(rows[0]["acc"])
    print(f"\nfloat accuracy {float_acc:.2f}%   (accuracy in %, on the validation split; * = unseen width)")
    head = "  ".join(f"{b:>5}{'*' if b not in rows[0]['bits'] else ' '}" for b in widths)
    print(f"{'variant':<11} {head}  {'mean':>6} {'unseen':>6}  {'train s':>8} {'scoring':>8} {'cpu s':>7} {'score cpu':>9}")
    for r in rows:
        accs = "  ".join(f"{r['acc'][b]:6.2f}" for b in widths)
        print(f"{r['name']:<11} {accs}  {r['trained']:6.2f} {r['unseen']:6.2f}  {r['train_s']:8.1f} "
              f"{r['score_s']:8.1f} {r['cpu_s']:7.1f} {r['score_cpu_s']:9.1f}")
    by = {r["name"]: r for r in rows}
    full, core = by["full"], by["coreset"]
    speed, cpu_speed = full["train_s"] / core["train_s"], full["cpu_s"] / core["cpu_s"]
    gap = full["trained"] - core["trained"]
    print(f"\ncoreset vs full: {speed:.2f}x faster wall ({cpu_speed:.2f}x CPU)  [target >= 3x]; "
          f"scoring is {100 * core['score_s'] / core['train_s']:.0f}% of the coreset run's training time")
    print(f"coreset vs full: mean accuracy {core['trained']:.2f} vs {full['trained']:.2f} "
          f"(gap {gap:+.2f} points) [target <= 1]")
    nc = by["nocorr"]
    print(f"bias correction (shared BN): trained mean {full['trained']:.2f} vs {nc['trained']:.2f} without; "
          f"unseen mean {full['unseen']:.2f} vs {nc['unseen']:.2f}; at {min(full['bits'])} bits "
          f"{full['acc'][min(full['bits'])]:.2f} vs {nc['acc'][min(full['bits'])]:.2f}")
    pb = by["perbn"]
    print(f"per-width BN baseline: trained mean {pb['trained']:.2f}, unseen mean {pb['unseen']:.2f} "
          f"(nearest trained width's BN, no calibration)")
    for name in ("weighted", "weighted_r4", "random"):
        if name in by:
            r = by[name]
            print(f"{name} 20% coresets: trained mean {r['trained']:.2f} (gap to full {full['trained'] - r['trained']:+.2f}), "
                  f"{full['train_s'] / r['train_s']:.2f}x faster wall, {full['cpu_s'] / r['cpu_s']:.2f}x CPU")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="4 multi-bit epochs instead of 8, no random-coreset run")
    p.add_argument("--epochs", type=int, help="multi-bit epochs (default 8, quick 4)")
    p.add_argument("--pretrain-epochs", type=int, help="float epochs (default 3, quick 2)")
    p.add_argument("--lr", type=float, default=0.02, help="multi-bit learning rate (cosine decay)")
    p.add_argument("--reselect-every", type=int, default=2)
    p.add_argument("--variants", default=None, help="comma-separated subset of " + ",".join(VARIANTS))
    args = p.parse_args()
    args.epochs = args.epochs or (4 if args.quick else 8)
    args.pretrain_epochs = args.pretrain_epochs or 3
    quick_skip = ("random", "weighted_r4")
    names = args.variants.split(",") if args.variants else [n for n in VARIANTS if not (args.quick and n in quick_skip)]
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        checkpoint, float_acc = pretrain(args, Path(tmp))
        rows = []
        for name in names:
            rows.append(run_variant(args, name, checkpoint))
            r = rows[-1]
            print(f"  {name}: mean {r['trained']:.2f}% unseen {r['unseen']:.2f}% train {r['train_s']:.1f}s "
                  f"(scoring {r['score_s']:.1f}s), run {r['wall_s']:.0f}s", flush=True)
    if {"full", "coreset", "nocorr", "perbn"} <= {r["name"] for r in rows}:
        report(rows, float_acc)


if __name__ == "__main__":
    main()
