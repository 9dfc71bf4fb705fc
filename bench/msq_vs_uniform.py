"""Default MSQ vs uniform QAT on the bundled data, over several seeds, side by side (not a test).

Every run uses the same model, data split, epoch budget and seeds; uniform QAT keeps the first and
last layer at 8 bits like MSQ, so the average bits are comparable. Prints mean ± std over seeds.
Validation is 1,000 images, so one image is 0.1 point and a single run's noise is ~0.5 point.

    python bench/msq_vs_uniform.py                 # lenet5 on mnist5k, seeds 0-2, 2 processes
    python bench/msq_vs_uniform.py --seeds 0 1 --model tinycnn --dataset digits
"""
from __future__ import annotations

import argparse
import statistics
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def run_one(job: tuple) -> dict:
    label, changes = job
    from msq.config import RunConfig
    from msq.training.trainer import Trainer

    cfg = RunConfig().replace(**changes)
    summary = Trainer(cfg).fit()
    return {"label": label, "seed": cfg.train.seed, "float": summary["float_acc"], "final": summary["final_acc"],
            "bits": summary["average_bits"], "compression": summary["compression"],
            "allocation": [layer["bits"] for layer in summary["layers"]]}


def fmt(values: list) -> str:
    mean = statistics.mean(values)
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{mean:6.2f} ± {std:4.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--model", default="lenet5")
    parser.add_argument("--dataset", default="mnist5k")
    parser.add_argument("--uniform-bits", type=int, nargs="+", default=[2, 3, 4])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--all-layers", action="store_true",
                        help="search (and uniformly quantize) the first and last layers too, instead of pinning them at 8 bits")
    args = parser.parse_args()

    common = {"model": args.model, "data.name": args.dataset, "train.threads": 1,
              "quant.keep_first_last": not args.all_layers}
    jobs = [("msq (default)", {**common, "train.seed": s}) for s in args.seeds]
    jobs += [(f"uniform {b}-bit", {**common, "method": "uniform", "uniform_bits": b, "train.seed": s})
             for b in args.uniform_bits for s in args.seeds]
    with ProcessPoolExecutor(args.workers) as pool:
        results = list(pool.map(run_one, jobs))

    pinned = "every layer searched" if args.all_layers else "first/last layer at 8 bits"
    print(f"{args.model} on {args.dataset}, seeds {args.seeds}, {pinned}, same split and epoch budget for every run\n")
    print(f"{'method':<16} {'float acc %':>14} {'final acc %':>14} {'drop':>6} {'avg bits':>9} {'compression':>12}")
    for label in dict.fromkeys(r["label"] for r in results):
        rows = [r for r in results if r["label"] == label]
        drop = statistics.mean(r["float"] - r["final"] for r in rows)
        print(f"{label:<16} {fmt([r['float'] for r in rows]):>14} {fmt([r['final'] for r in rows]):>14} "
              f"{drop:6.2f} {statistics.mean(r['bits'] for r in rows):9.2f} "
              f"{statistics.mean(r['compression'] for r in rows):11.2f}x")
    print("\nper-run allocations (MSQ):")
    for r in results:
        if r["label"].startswith("msq"):
            print(f"  seed {r['seed']}: {r['allocation']}  final {r['final']:.2f}%")


if __name__ == "__main__":
    main()
