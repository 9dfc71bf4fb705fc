"""MSQ's cost over plain float training, measured side by side in one run (not a test).

1. Step time on ResNet-20 (CIFAR layout, batch 128): float training vs MSQ search steps (fake-quantized
   forward + LSB penalty), interleaved repeats, medians. Target: MSQ / float <= 1.3.
2. The Hessian estimate's share of total training time in a real MSQ run at the default settings
   (Hutchinson only at prune checks where a layer is about to drop). Target: <= 10%.

    python bench/overhead.py            # full: default schedule for part 2 (several minutes on 2 cores)
    python bench/overhead.py --quick    # shorter part 2 schedule
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from msq.config import QuantConfig, RunConfig  # noqa: E402
from msq.quant import quantize_, searched_layers, set_mode_  # noqa: E402
from msq.regularize import lsb_penalty  # noqa: E402
from msq.training.trainer import Trainer  # noqa: E402
from sample_models import create_model  # noqa: E402


def step_times(batch: int, repeats: int, steps: int) -> dict:
    torch.manual_seed(0)
    x = torch.randn(batch, 3, 32, 32)
    y = torch.randint(0, 10, (batch,))
    float_model = create_model("resnet20", num_classes=10, in_channels=3, image_size=32)
    msq_model = create_model("resnet20", num_classes=10, in_channels=3, image_size=32)
    quantize_(msq_model, QuantConfig(init_bits=8))
    set_mode_(msq_model, "quant")
    searched = [layer for _, layer in searched_layers(msq_model)]

    def float_step(opt):
        loss = F.cross_entropy(float_model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    def msq_step(opt):
        loss = F.cross_entropy(msq_model(x), y) + 32.0 * lsb_penalty(searched, "memory")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    runs = {"float": (float_step, torch.optim.SGD(float_model.parameters(), lr=0.01, momentum=0.9)),
            "msq": (msq_step, torch.optim.SGD(msq_model.parameters(), lr=0.01, momentum=0.9))}
    for fn, opt in runs.values():  # warm-up
        fn(opt)
    samples = {name: [] for name in runs}
    for _ in range(repeats):  # interleaved, so drifts in machine load hit both alike
        for name, (fn, opt) in runs.items():
            started = time.perf_counter()
            for _ in range(steps):
                fn(opt)
            samples[name].append((time.perf_counter() - started) / steps)
    return {name: statistics.median(v) for name, v in samples.items()}


def hessian_share(quick: bool) -> dict:
    cfg = RunConfig(model="resnet20", data={"name": "mnist5k"})
    if quick:
        cfg = cfg.replace(**{"train.pretrain_epochs": 2, "train.search_epochs": 6, "train.finetune_epochs": 1,
                             "data.limit": 2000})
    trainer = Trainer(cfg)
    started = time.perf_counter()
    summary = trainer.fit()
    total = time.perf_counter() - started
    estimates = sum(1 for e in summary["events"] if e["kind"] == "hessian")
    return {"total_s": total, "hessian_s": summary["timings"].get("hessian", 0.0), "estimates": estimates,
            "epochs": summary["epochs_done"], "avg_bits": summary["average_bits"], "final_acc": summary["final_acc"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--steps", type=int, default=3)
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads\n")

    times = step_times(args.batch, args.repeats, args.steps)
    ratio = times["msq"] / times["float"]
    print(f"ResNet-20, batch {args.batch}, CPU, median of {args.repeats} x {args.steps} steps")
    print(f"  float step {times['float'] * 1e3:8.1f} ms")
    print(f"  MSQ step   {times['msq'] * 1e3:8.1f} ms")
    print(f"  MSQ / float = {ratio:.3f}   (target <= 1.3: {'met' if ratio <= 1.3 else 'MISSED'})\n")

    share = hessian_share(args.quick)
    fraction = share["hessian_s"] / share["total_s"]
    schedule = "quick schedule" if args.quick else "default schedule"
    print(f"MSQ run, ResNet-20 on mnist5k, {schedule}: {share['epochs']} epochs in {share['total_s']:.1f} s, "
          f"{share['estimates']} Hessian estimates in {share['hessian_s']:.1f} s")
    print(f"  Hessian share of training time = {100 * fraction:.1f}%   "
          f"(target <= 10%: {'met' if fraction <= 0.10 else 'MISSED'})")
    print(f"  result: {share['avg_bits']:.2f} average bits, {share['final_acc']:.2f}% val accuracy")


if __name__ == "__main__":
    main()
