"""Accuracy vs compression on real Fashion-MNIST: MSQ vs HAWQ-style vs uniform QAT vs BSQ (not a test).

Every run of a seed starts from the same float model (pretrained once per seed, then loaded with
``checkpoint``), trains on the same subset with the same schedule (search-phase epochs at the
search learning rate, then the finetune epochs: ``fixed_width_phases``), and keeps the first and
last layers at 8 bits. Bits are counted with the sign for every method. Prints mean ± std over
seeds, the seed spread of each allocation, the paired difference (same seed) to the nearest
uniform point, and each method's wall time and peak memory; writes bench/results/pareto.csv and
bench/results/pareto.png.

    python bench/pareto.py                                   # lenet5, seeds 0-2, 2 processes
    python bench/pareto.py --limit 20000 --epochs 4,8,3      # the issue's larger setting
    python bench/pareto.py --families msq --reuse bench/results/pareto.csv   # rerun MSQ only, the
                         # other rows read back from an earlier run of the same (deterministic) setup
"""
from __future__ import annotations

import argparse
import csv
import resource
import statistics
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
RESULTS = Path(__file__).resolve().parent / "results"


def common_config(args, seed: int) -> dict:
    pre, search, fine = (int(x) for x in args.epochs.split(","))
    return {"model": args.model, "data.name": "fashion-mnist", "data.limit": args.limit, "train.threads": 1,
            "train.seed": seed, "train.pretrain_epochs": pre, "train.search_epochs": search,
            "train.finetune_epochs": fine, "quant.grid": args.grid, "prune.min_bits": 1,
            "quant.keep_first_last": not args.search_all, **dict(_parse_set(item) for item in args.set)}


def _parse_set(item: str) -> tuple:
    import json
    key, _, value = item.partition("=")
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


def pretrain(job: tuple) -> tuple[int, str, float]:
    """Float training of one seed; returns (seed, state_dict path, float accuracy)."""
    args, seed, folder = job
    import torch
    from msq.config import RunConfig
    from msq.quant import restore_
    from msq.training.trainer import Trainer

    changes = {**common_config(args, seed), "method": "uniform", "train.search_epochs": 0, "train.finetune_epochs": 0}
    trainer = Trainer(RunConfig().replace(**changes))
    summary = trainer.fit()
    path = Path(folder) / f"float_seed{seed}.pt"
    torch.save(restore_(trainer.model).state_dict(), path)
    return seed, str(path), summary["final_acc"]


def run_one(job: tuple) -> dict:
    label, family, changes = job
    from msq.config import RunConfig
    from msq.training.trainer import Trainer

    cfg = RunConfig().replace(**changes)
    started = time.perf_counter()
    summary = Trainer(cfg).fit()
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0     # a fresh process per run
    if summary["status"] != "completed":
        raise RuntimeError(f"{label} seed {cfg.train.seed}: {summary['status']} {summary['error']}")
    return {"label": label, "family": family, "seed": cfg.train.seed, "grid": cfg.quant.grid,
            "final_acc": summary["final_acc"], "avg_bits": summary["average_bits"],
            "compression": summary["compression"], "target_bits": cfg.prune.budget_bits if family in ("msq", "hawq") else "",
            "allocation": "/".join(str(l["storage_bits"]) for l in summary["layers"]),
            "wall_s": time.perf_counter() - started, "peak_mb": peak_mb,
            "hessian_s": summary["timings"].get("hessian", 0.0)}


def read_rows(path: Path, families: set) -> list:
    """Rows of an earlier run's CSV for the families not rerun now (numbers parsed back)."""
    rows = []
    with open(path, newline="") as fh:
        for row in csv.DictReader(fh):
            if row["family"] in families:
                continue
            for key in ("final_acc", "avg_bits", "compression", "wall_s", "peak_mb", "hessian_s"):
                row[key] = float(row[key])
            row["seed"] = int(row["seed"])
            rows.append(row)
    return rows


def jobs_for(args, checkpoints: dict) -> list:
    jobs = []
    for seed, path in checkpoints.items():
        base = {**common_config(args, seed), "checkpoint": path, "train.pretrain_epochs": 0}
        for grid in ("symmetric", "affine"):
            for bits in args.uniform_bits:
                label = f"uniform {bits}-bit" + ("" if grid == args.grid else f" ({grid})")
                jobs.append((label, "uniform" if grid == args.grid else "uniform-other-grid",
                             {**base, "quant.grid": grid, "method": "uniform", "uniform_bits": bits}))
        for budget in args.budgets:
            jobs.append((f"msq @{budget}", "msq", {**base, "method": "msq", "prune.target_avg_bits": budget}))
            jobs.append((f"hawq @{budget}", "hawq", {**base, "method": "hawq", "prune.target_avg_bits": budget}))
        for decay in args.bsq_decays:
            jobs.append((f"bsq decay {decay:g}", "bsq", {**base, "method": "bsq", "bsq.decay": decay,
                                                          "bsq.requant_every": 2, "quant.grid": "affine"}))
    return jobs


def mean_std(values: list) -> str:
    mean = statistics.mean(values)
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{mean:6.2f} ± {std:4.2f}"


def report(rows: list, args, float_acc: dict) -> None:
    labels = list(dict.fromkeys(r["label"] for r in rows))
    uniform = [r for r in rows if r["family"] == "uniform"]
    print(f"\n{args.model} on Fashion-MNIST ({args.limit} training images, official 10k test split as validation), "
          f"epochs {args.epochs} (pretrain shared per seed), seeds {args.seeds}, grid {args.grid}, "
          + ("every layer searched" if args.search_all else "first/last at 8 bits"))
    print("float accuracy per seed: " + ", ".join(f"{s}: {a:.2f}%" for s, a in sorted(float_acc.items())))
    head = (f"{'config':<26} {'acc %':>14} {'avg bits':>14} {'compr.':>7} {'allocations (seeds)':<34} "
            f"{'Δ vs nearest uniform (paired)':<34} {'wall s':>7} {'peak MB':>8}")
    print(head)
    print("-" * len(head))
    for label in labels:
        mine = sorted((r for r in rows if r["label"] == label), key=lambda r: r["seed"])
        bits = statistics.mean(r["avg_bits"] for r in mine)
        allocs = sorted(set(r["allocation"] for r in mine))
        paired = ""
        if mine[0]["family"] != "uniform" and uniform:
            near = min({u["label"]: u for u in uniform}.values(), key=lambda u: abs(u["avg_bits"] - bits))["label"]
            diffs = [r["final_acc"] - next(u["final_acc"] for u in uniform if u["label"] == near and u["seed"] == r["seed"])
                     for r in mine]
            paired = f"{mean_std(diffs)} vs {near}"
        print(f"{label:<26} {mean_std([r['final_acc'] for r in mine]):>14} "
              f"{mean_std([r['avg_bits'] for r in mine]):>14} {statistics.mean(r['compression'] for r in mine):6.1f}x "
              f"{' | '.join(allocs)[:34]:<34} {paired:<34} {statistics.mean(r['wall_s'] for r in mine):7.1f} "
              f"{max(r['peak_mb'] for r in mine):8.0f}")


def plot(rows: list, path: Path, title: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5), dpi=120)
    styles = {"uniform": ("k", "s", "-"), "uniform-other-grid": ("0.6", "s", ":"), "msq": ("tab:red", "o", "-"),
              "hawq": ("tab:blue", "^", "--"), "bsq": ("tab:green", "D", "")}
    for family, (colour, marker, line) in styles.items():
        points = {}
        for r in rows:
            if r["family"] == family:
                points.setdefault(r["label"], []).append(r)
        if not points:
            continue
        xs = [statistics.mean(p["compression"] for p in v) for v in points.values()]
        ys = [statistics.mean(p["final_acc"] for p in v) for v in points.values()]
        es = [statistics.stdev(p["final_acc"] for p in v) if len(v) > 1 else 0.0 for v in points.values()]
        order = sorted(range(len(xs)), key=lambda i: xs[i])
        ax.errorbar([xs[i] for i in order], [ys[i] for i in order], yerr=[es[i] for i in order], color=colour,
                    marker=marker, linestyle=line or "none", capsize=3, label=family)
    # zoom on the methods being compared; a reference far below (the affine grid at 1 bit) is noted
    main = [r["final_acc"] for r in rows if r["family"] != "uniform-other-grid"]
    low, high = min(main) - 1.0, max(main) + 0.5
    ax.set_ylim(low, high)
    for label in dict.fromkeys(r["label"] for r in rows):
        mine = [r for r in rows if r["label"] == label]
        acc = statistics.mean(r["final_acc"] for r in mine)
        if acc < low:
            x = statistics.mean(r["compression"] for r in mine)
            ax.annotate(f"{label}: {acc:.1f}% (off the chart)", (x, low), xytext=(x - 6, low + 0.3),
                        arrowprops={"arrowstyle": "->", "color": "0.5"}, fontsize=8, color="0.4")
    ax.set_xlabel("compression (32 / average bits, sign included)")
    ax.set_ylabel("validation accuracy % (mean ± std over seeds)")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--model", default="lenet5")
    parser.add_argument("--limit", type=int, default=10000, help="training images (a seeded subset of the 60k)")
    parser.add_argument("--epochs", default="4,6,3", help="PRETRAIN,SEARCH,FINETUNE")
    parser.add_argument("--grid", default="symmetric", choices=["symmetric", "affine"])
    parser.add_argument("--budgets", type=float, nargs="+", default=[1.5, 2.0, 3.0])
    parser.add_argument("--uniform-bits", type=int, nargs="+", default=[1, 2, 3, 4])
    parser.add_argument("--bsq-decays", type=float, nargs="*", default=[5e-3])
    parser.add_argument("--search-all", action="store_true",
                        help="search every layer (default: the first and last stay at 8 bits)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="a config change for every run of this invocation (e.g. prune.reach_fraction=0.25)")
    parser.add_argument("--out", help="file stem under bench/results (default pareto, or pareto_MODEL)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--families", nargs="*", default=[],
                        help="run only these families (msq, hawq, uniform, uniform-other-grid, bsq)")
    parser.add_argument("--reuse", help="a previous pareto.csv whose rows fill in the families not run now")
    args = parser.parse_args()

    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder, ProcessPoolExecutor(args.workers, max_tasks_per_child=1) as pool:
        pretrained = list(pool.map(pretrain, [(args, s, folder) for s in args.seeds]))
        checkpoints = {seed: path for seed, path, _ in pretrained}
        jobs = [j for j in jobs_for(args, checkpoints) if not args.families or j[1] in args.families]
        rows = list(pool.map(run_one, jobs))
    if args.reuse:
        reused = [r for r in read_rows(Path(args.reuse), set(args.families)) if r["seed"] in args.seeds]
        print(f"rows of {sorted({r['family'] for r in reused})} read from {args.reuse} (same seeds and setup; "
              f"the float pretraining of a seed is deterministic on one thread)")
        rows = reused + rows
    float_acc = {seed: acc for seed, _, acc in pretrained}
    RESULTS.mkdir(exist_ok=True)
    name = args.out or f"pareto{'' if args.model == 'lenet5' else '_' + args.model}"
    with open(RESULTS / f"{name}.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    report(rows, args, float_acc)
    plot(rows, RESULTS / f"{name}.png", f"{args.model}, Fashion-MNIST {args.limit} train, epochs {args.epochs}, "
         f"seeds {args.seeds}")
    print(f"\nwrote {RESULTS / (name + '.csv')} and {RESULTS / (name + '.png')}; "
          f"{len(rows)} runs in {time.perf_counter() - started:.0f} s with {args.workers} processes")


if __name__ == "__main__":
    main()
