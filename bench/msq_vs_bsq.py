"""What MSQ saves over BSQ, measured side by side in one run on the same model, data, batch and device
(not a test).

1. Trainable parameters at 8-bit initial precision (ResNet-20 3x32x32 and LeNet-5 1x28x28): MSQ trains
   the float weights, BSQ 2 x 8 bit planes per searched weight plus a scale. Target: BSQ / MSQ >= 8.
2. One search step as the trainer runs it (forward, task loss + the method's regularizer, backward,
   SGD step; BSQ also clamps its planes), at several batch sizes: median wall and process-CPU time
   over interleaved repeats (CPU time is the steadier number on a shared machine), and peak training
   memory. Targets on ResNet-20 (read at the first batch size): BSQ / MSQ >= 3 for both.
   Peak memory: on CUDA ``torch.cuda.max_memory_allocated``. On CPU the same quantity, counted:
   the tensors alive when the step starts (parameters, buffers, optimizer state, the batch) plus the
   highest net total of every allocation PyTorch's CPU allocator makes during the step, read from the
   profiler's memory events (``profile_memory=True``). Why not RSS: it counts the Python heap, freed
   but cached pages and thread stacks, and moves by allocator whims; this counts what the step needs.
   With ``--device cuda`` (or ``--cap-mb`` on CPU): the largest batch whose peak fits under a fixed
   cap, by binary search.
3. Accuracy and compression on mnist5k at the default budget (``RunConfig()``: LeNet-5, 10/20/6
   epochs): MSQ at its defaults, BSQ at ``--bsq-decay`` (calibrated to a similar average width), and
   how evenly each spreads the bits over the searched layers.

    python bench/msq_vs_bsq.py                 # everything, default schedules (minutes on 2 cores)
    python bench/msq_vs_bsq.py --quick         # shorter schedules for part 3
    python bench/msq_vs_bsq.py --device cuda   # adds the largest batch under --cap-mb (default 2048)
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from msq.methods.bsq import BSQMethod, group_lasso_penalty  # noqa: E402
from msq.config import QuantConfig, RunConfig, TrainConfig  # noqa: E402
from msq.quant import quantize_, searched_layers, set_mode_  # noqa: E402
from msq.quant.inventory import trainable_param_count  # noqa: E402
from msq.regularize import lsb_penalty  # noqa: E402
from msq.training.setup import make_optimizer  # noqa: E402
from msq.training.trainer import Trainer  # noqa: E402
from sample_models import create_model  # noqa: E402

MODELS = {"resnet20": (3, 32), "lenet5": (1, 28)}


# -- the two models, and one search step of each ------------------------------------------------------
def make_pair(name: str, channels: int, size: int, device: torch.device):
    """(MSQ model, BSQ model) from the same initial weights, both prepared for their search phase at 8 bits."""
    torch.manual_seed(0)
    msq_model = create_model(name, num_classes=10, in_channels=channels, image_size=size)
    bsq_model = copy.deepcopy(msq_model)
    quantize_(msq_model, QuantConfig(init_bits=8))
    quantize_(bsq_model, QuantConfig(init_bits=8))
    bsq = BSQMethod(RunConfig(method="bsq"))
    bsq.convert_(bsq_model)
    bsq_model.bsq_method = bsq           # the step below needs its layer list and plane clamp
    for model in (msq_model, bsq_model):
        set_mode_(model, "quant")
        model.to(device).train()
    return msq_model, bsq_model


class SearchStep:
    """One search-phase step as the trainer runs it: task loss + regularizer, backward, SGD step.

    Gradients are cleared first, as the trainer does, so that no gradient of the previous step is alive
    during the forward of either method.
    """

    def __init__(self, model, label: str, batch: int, channels: int, size: int, device: torch.device):
        g = torch.Generator().manual_seed(1)
        self.x = torch.randn(batch, channels, size, size, generator=g).to(device)
        self.y = torch.randint(0, 10, (batch,), generator=g).to(device)
        self.model, self.label = model, label
        cfg = RunConfig(method=label)
        self.optimizer = make_optimizer(model, TrainConfig(), cfg.train.lr)
        if label == "bsq":
            method = model.bsq_method
            self.after_step = lambda: method.after_step(None, None)     # the plane clamp, as the trainer calls it
            self.regularizer = lambda: cfg.bsq.decay * group_lasso_penalty(method._layers)
        else:
            layers = [layer for _, layer in searched_layers(model)]
            self.regularizer = lambda: cfg.reg.lam * lsb_penalty(layers, cfg.reg.norm)
            self.after_step = lambda: None

    def __call__(self) -> None:
        self.optimizer.zero_grad(set_to_none=True)
        loss = F.cross_entropy(self.model(self.x), self.y) + self.regularizer()
        loss.backward()
        self.optimizer.step()
        self.after_step()


# -- memory ---------------------------------------------------------------------------------------------
def _alive_bytes(step: SearchStep) -> int:
    """Bytes of every distinct tensor alive between steps: parameters, buffers, optimizer state, the batch."""
    tensors = list(step.model.parameters()) + list(step.model.buffers()) + [step.x, step.y]
    tensors += [t for state in step.optimizer.state.values() for t in state.values() if torch.is_tensor(t)]
    storages = {t.untyped_storage().data_ptr(): t.untyped_storage().nbytes() for t in tensors}
    return sum(storages.values())


def _cpu_step_peak(step: SearchStep) -> int:
    """Highest net total allocated by PyTorch's CPU allocator during one step (profiler memory events)."""
    from torch.profiler import ProfilerActivity, profile
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        step()
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "trace.json")
        prof.export_chrome_trace(path)
        with open(path) as fh:
            trace = json.load(fh)
    events = trace["traceEvents"] if isinstance(trace, dict) else trace
    # Our own running total of the blocks allocated in this step (the profiler's "Total Allocated" is a
    # process-wide counter that drifts across sessions); frees of older blocks are not counted.
    live, running, peak = {}, 0, 0
    for e in sorted((e for e in events if e.get("name") == "[memory]"), key=lambda e: e["ts"]):
        size, addr = e["args"]["Bytes"], e["args"]["Addr"]
        if size > 0:
            live[addr] = live.get(addr, 0) + size
            running += size
            peak = max(peak, running)
        elif addr in live:
            running -= live.pop(addr)
    return peak


def peak_memory(step: SearchStep, device: torch.device) -> dict:
    """{"persistent", "step", "peak"} in bytes for one step, after at least one warm-up step."""
    step.optimizer.zero_grad(set_to_none=True)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        persistent = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        step()
        torch.cuda.synchronize(device)
        peak = torch.cuda.max_memory_allocated(device)
        return {"persistent": persistent, "step": peak - persistent, "peak": peak}
    persistent = _alive_bytes(step)
    in_step = _cpu_step_peak(step)
    return {"persistent": persistent, "step": in_step, "peak": persistent + in_step}


def largest_batch(model, label: str, channels: int, size: int, device: torch.device, cap: float,
                  limit: int = 1 << 16) -> int:
    """The largest batch whose peak fits under ``cap`` bytes: doubling, then bisection."""
    def fits(batch: int) -> bool:
        try:
            step = SearchStep(model, label, batch, channels, size, device)
            step()                                              # optimizer state exists from here on
            return peak_memory(step, device)["peak"] <= cap
        except torch.cuda.OutOfMemoryError:
            return False
        finally:
            if device.type == "cuda":
                torch.cuda.empty_cache()

    if not fits(1):
        return 0
    low = 1
    while low * 2 <= limit and fits(low * 2):
        low *= 2
    high = min(low * 2, limit + 1)                              # low fits, high does not
    while high - low > 1:
        mid = (low + high) // 2
        low, high = (mid, high) if fits(mid) else (low, mid)
    return low


# -- accuracy and compression ---------------------------------------------------------------------------
def _spread(layers: list) -> dict:
    """How evenly the searched layers' bits are spread: plain and parameter-weighted std, range."""
    searched = [l for l in layers if not l["fixed"]]
    bits, params = [l["bits"] for l in searched], [l["params"] for l in searched]
    mean = sum(b * n for b, n in zip(bits, params)) / sum(params)
    weighted = (sum(n * (b - mean) ** 2 for b, n in zip(bits, params)) / sum(params)) ** 0.5
    return {"bits_std": statistics.pstdev(bits), "bits_range": f"{min(bits)}..{max(bits)}", "weighted_std": weighted}


def accuracy_runs(quick: bool, decay: float, threads: int, bsq_lr) -> dict:
    """MSQ at RunConfig() and BSQ at the same budget and ``decay``; both from the same float pretraining."""
    base = RunConfig().replace(**{"train.threads": threads})
    if quick:
        base = base.replace(**{"train.pretrain_epochs": 4, "train.search_epochs": 8, "train.finetune_epochs": 2})
    configs = {"msq": base, "bsq": base.replace(**{"method": "bsq", "bsq.decay": decay, "bsq.search_lr": bsq_lr})}
    results = {}
    for label, cfg in configs.items():
        started, cpu_started = time.perf_counter(), time.process_time()
        summary = Trainer(cfg).fit()
        results[label] = {**{k: summary[k] for k in ("final_acc", "float_acc", "average_bits", "compression")},
                          "seconds": time.perf_counter() - started, "cpu_seconds": time.process_time() - cpu_started,
                          **_spread(summary["layers"]),
                          "layer_bits": [(l["fqn"], l["bits"]) for l in summary["layers"]]}
        if "bsq" in summary:
            results[label]["with_sign"] = summary["bsq"]["average_bits_with_sign"]
    return results


def ratio_line(label: str, msq: float, bsq: float, unit: str, target: float | None = None) -> str:
    ratio = bsq / msq if msq else float("inf")
    verdict = "" if target is None else f"   (target >= {target:g}: {'met' if ratio >= target else 'MISSED'})"
    number = "{:12,.0f}" if unit == "" else "{:12,.1f}"
    return (f"  {label:<22} MSQ {number.format(msq)} {unit:<4} BSQ {number.format(bsq)} {unit:<4} "
            f"BSQ/MSQ = {ratio:6.2f}{verdict}")


def part_params() -> None:
    print("1. Trainable parameters at 8-bit initial precision (first/last layers fixed at 8 bits under both)")
    for name, (channels, size) in MODELS.items():
        msq_model, bsq_model = make_pair(name, channels, size, torch.device("cpu"))
        print(ratio_line(name, trainable_param_count(msq_model), trainable_param_count(bsq_model), "",
                         target=8))
    print()


def time_steps(steps: dict, repeats: int, count: int, device: torch.device) -> dict:
    """Median wall and process-CPU seconds per step of each step function, repeats interleaved."""
    for fn in steps.values():              # warm-up: optimizer state, allocator, kernels
        fn()
        fn()
    wall, cpu = {label: [] for label in steps}, {label: [] for label in steps}
    for _ in range(repeats):               # interleaved, so drifts in machine load hit both alike
        for label, fn in steps.items():
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            w0, c0 = time.perf_counter(), time.process_time()
            for _ in range(count):
                fn()
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            wall[label].append((time.perf_counter() - w0) / count)
            cpu[label].append((time.process_time() - c0) / count)
    return {label: (statistics.median(wall[label]), statistics.median(cpu[label])) for label in steps}


def part_steps(args, device: torch.device) -> dict:
    memory_kind = "cuda max_memory_allocated" if device.type == "cuda" else "CPU allocator, profiler-counted"
    print(f"2. One search step on {device} ({torch.get_num_threads()} thread(s)): median of {args.repeats} x "
          f"{args.steps} steps, interleaved; memory: {memory_kind}")
    header = (f"  {'model':<9}{'batch':>6} | {'step ms MSQ':>11} {'BSQ':>8} {'ratio':>6} | {'cpu ms MSQ':>10} "
              f"{'BSQ':>8} {'ratio':>6} | {'peak MiB MSQ':>12} {'BSQ':>8} {'ratio':>6} | "
              f"{'weights+opt MiB':>15} {'ratio':>6}")
    print(header)
    found = {}
    for name in args.models:
        channels, size = MODELS[name]
        pair = make_pair(name, channels, size, device)
        for batch in args.batches:
            steps = {label: SearchStep(model, label, batch, channels, size, device)
                     for label, model in zip(("msq", "bsq"), pair)}
            times = time_steps(steps, args.repeats, args.steps, device)
            mem = {label: peak_memory(fn, device) for label, fn in steps.items()}
            m, b = times["msq"], times["bsq"]
            mib = {k: {q: v / 2**20 for q, v in d.items()} for k, d in mem.items()}
            found[(name, batch)] = {"time": times, "memory": mem}
            print(f"  {name:<9}{batch:>6} | {m[0] * 1e3:>11.1f} {b[0] * 1e3:>8.1f} {b[0] / m[0]:>6.2f} | "
                  f"{m[1] * 1e3:>10.1f} {b[1] * 1e3:>8.1f} {b[1] / m[1]:>6.2f} | {mib['msq']['peak']:>12.1f} "
                  f"{mib['bsq']['peak']:>8.1f} {mib['bsq']['peak'] / mib['msq']['peak']:>6.2f} | "
                  f"{mib['msq']['persistent']:>6.1f} /{mib['bsq']['persistent']:>7.1f} "
                  f"{mib['bsq']['persistent'] / mib['msq']['persistent']:>6.2f}")
        if args.cap_mb is not None:
            cap = args.cap_mb * 2**20
            largest = {label: largest_batch(model, label, channels, size, device, cap)
                       for label, model in zip(("msq", "bsq"), pair)}
            print(f"  {name}: largest batch under {args.cap_mb:g} MiB: MSQ {largest['msq']}, BSQ {largest['bsq']}"
                  f" (MSQ/BSQ = {largest['msq'] / max(largest['bsq'], 1):.2f})")
    main_key = ("resnet20", args.batches[0])
    if main_key in found:
        t, mem = found[main_key]["time"], found[main_key]["memory"]
        speed, saving = t["bsq"][0] / t["msq"][0], mem["bsq"]["peak"] / mem["msq"]["peak"]
        print(f"  ResNet-20, batch {args.batches[0]}: MSQ is {speed:.2f}x faster (target >= 3: "
              f"{'met' if speed >= 3 else 'MISSED'}) and needs {saving:.2f}x less peak memory (target >= 3: "
              f"{'met' if saving >= 3 else 'MISSED'})")
    print()
    return found


def part_accuracy(args) -> None:
    print(f"3. mnist5k, LeNet-5, {'quick' if args.quick else 'default'} schedule, {args.threads} thread(s); "
          f"BSQ decay {args.bsq_decay:g}")
    results = accuracy_runs(args.quick, args.bsq_decay, args.threads, args.bsq_lr)
    for label, r in results.items():
        bits = ", ".join(f"{fqn}:{b}" for fqn, b in r["layer_bits"])
        print(f"  {label.upper():<4} acc {r['final_acc']:6.2f}% (float {r['float_acc']:.2f}%)  avg bits "
              f"{r['average_bits']:.3f}  compression {r['compression']:6.2f}x  train {r['seconds']:6.1f} s "
              f"({r['cpu_seconds']:.1f} s CPU)  [{bits}]")
        print(f"       searched layers: bits std {r['bits_std']:.3f}, range {r['bits_range']}, "
              f"params-weighted std {r['weighted_std']:.3f}" +
              (f";  with BSQ's sign bit: avg {r['with_sign']:.3f} bits, {32 / r['with_sign']:.2f}x"
               if "with_sign" in r else ""))
    m, b = results["msq"], results["bsq"]
    print(ratio_line("training time (wall)", m["seconds"], b["seconds"], "s"))
    print(ratio_line("training time (CPU)", m["cpu_seconds"], b["cpu_seconds"], "s"))
    print(f"  accuracy MSQ - BSQ = {m['final_acc'] - b['final_acc']:+.2f} points; compression MSQ / BSQ = "
          f"{m['compression'] / b['compression']:.2f} (BSQ's count), {m['compression'] * b['with_sign'] / 32:.2f} "
          f"(with BSQ's sign bit); more even allocation over the searched layers: "
          f"{'MSQ' if m['weighted_std'] < b['weighted_std'] else 'BSQ'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="shorter schedules for the mnist5k runs")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batches", type=int, nargs="+", default=[128, 32, 8, 1],
                        help="batch sizes of part 2; the first is the one the targets are read at")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--cap-mb", type=float, default=None, help="memory cap for the batch search "
                        "(default 2048 on cuda, off on cpu)")
    parser.add_argument("--bsq-decay", type=float, default=0.15,
                        help="BSQ's group-Lasso strength for part 4 (0.15: calibrated on the default schedule; "
                             "0.14 keeps 2.5 bits, 0.17 collapses LeNet-5's fc1 to zero)")
    parser.add_argument("--bsq-lr", type=float, default=None, help="bsq.search_lr for part 4 (None = train.lr)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (1: steadier on a shared box)")
    parser.add_argument("--skip", nargs="*", default=[], choices=["params", "steps", "accuracy"])
    args = parser.parse_args()
    device = torch.device(args.device)
    torch.set_num_threads(args.threads)
    if device.type == "cuda" and args.cap_mb is None:
        args.cap_mb = 2048.0
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads, device {device}\n")
    if "params" not in args.skip:
        part_params()
    if "steps" not in args.skip:
        part_steps(args, device)
    if "accuracy" not in args.skip:
        part_accuracy(args)


if __name__ == "__main__":
    main()
