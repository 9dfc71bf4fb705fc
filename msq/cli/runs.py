"""``python -m msq runs | show RUN | stop RUN | resume RUN | set-lam RUN VALUE``: the run store from a
terminal. Listing and showing first mark dead workers failed and start queued runs whose device is
free, so the CLI alone keeps the queue moving; on a full disk they skip that bookkeeping, say so,
and still show what is stored."""
from __future__ import annotations

import json
import sqlite3
import sys
import textwrap
import time

from msq.runs import RunStore, resume, schedule, set_lam, stop
from msq.runs.controls import LAM_RANGE
from msq.runs.disk import is_disk_full, store_full_note

HOME_HELP = "run store folder (default $MSQ_HOME or ./runs)"


def register(subparsers) -> None:
    p = subparsers.add_parser("runs", help="list runs", description="List runs, newest first.")
    p.add_argument("--home", help=HOME_HELP)
    p.add_argument("--status", choices=["queued", "running", "completed", "stopped", "failed"])
    p.add_argument("--method")
    p.add_argument("--model")
    p.add_argument("--dataset")
    p.add_argument("--limit", type=int, help="show at most this many runs")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(handler=list_command)

    p = subparsers.add_parser("show", help="show one run", description="Config, layers with bits, last "
                              "metrics, events and error of one run.")
    p.add_argument("run", metavar="RUN", help="run id (see `python -m msq runs`)")
    p.add_argument("--home", help=HOME_HELP)
    p.add_argument("--events", type=int, default=15, help="show the last N events (default 15)")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.set_defaults(handler=show_command)

    p = subparsers.add_parser("stop", help="stop a run", description="Ask a run to stop at its next step; "
                              "after --timeout seconds send SIGTERM, then SIGKILL.")
    p.add_argument("run", metavar="RUN", help="run id")
    p.add_argument("--home", help=HOME_HELP)
    p.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for a cooperative stop (default 10)")
    p.set_defaults(handler=stop_command)

    p = subparsers.add_parser("resume", help="resume a failed or stopped run",
                              description="Queue the run again; it continues from its last checkpoint.")
    p.add_argument("run", metavar="RUN", help="run id")
    p.add_argument("--home", help=HOME_HELP)
    p.set_defaults(handler=resume_command)

    p = subparsers.add_parser("set-lam", help="change λ of a running or queued run",
                              description="A running run applies it at its next step and logs a lam_change event.")
    p.add_argument("run", metavar="RUN", help="run id")
    p.add_argument("value", metavar="VALUE", type=float, help="the new λ, from {:g} to {:g}".format(*LAM_RANGE))
    p.add_argument("--wait", nargs="?", type=float, const=60.0, default=None, metavar="SECONDS",
                   help="wait (default 60 s) until the worker applied it; exit 2 with the reason if it was not")
    p.add_argument("--home", help=HOME_HELP)
    p.set_defaults(handler=set_lam_command)


def stop_command(args) -> int:
    return _print(f"{args.run} {stop(args.home, args.run, timeout=args.timeout)}")   # checks --timeout first


def resume_command(args) -> int:
    return _print(f"{args.run} {resume(RunStore(args.home, create=False), args.run)}")


def set_lam_command(args) -> int:
    outcome = set_lam(RunStore(args.home, create=False), args.run, args.value, wait=args.wait)
    note = {"sent": " (sent: the worker applies it at its next step; --wait waits for its answer)",
            "applied": " (applied)"}.get(outcome, "")
    return _print(f"{args.run} λ -> {args.value:g}{note}")


def _schedule_unless_full(store: RunStore) -> None:
    """``schedule``, except on a full disk, where its writes fail: then a warning, and reading goes on."""
    try:
        schedule(store)
    except (OSError, sqlite3.Error) as exc:   # OSError: the store could only be opened read-only
        if not is_disk_full(exc):
            raise
        print(f"warning: {store_full_note(store.home)}", file=sys.stderr)


def _print(text: str) -> int:
    print(text)
    return 0


def _num(value, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def _duration(seconds) -> str:
    if seconds is None:
        return "-"
    seconds = int(seconds)
    return f"{seconds // 3600}h{seconds // 60 % 60:02d}m" if seconds >= 3600 else f"{seconds // 60}m{seconds % 60:02d}s"


def list_command(args) -> int:
    store = RunStore(args.home, create=False)
    _schedule_unless_full(store)
    rows = store.list_runs(status=args.status, method=args.method, model=args.model, dataset=args.dataset,
                           limit=args.limit)
    if args.json:
        return _print(json.dumps(rows, indent=2))
    if not rows:
        return _print(f"no runs in {store.path}")
    header = f"{'id':<22} {'status':<9} {'method':<8} {'model':<12} {'dataset':<10} {'λ':>8} {'val acc':>7} " \
             f"{'compr':>6} {'bits':>5} {'duration':>8}"
    lines = [header]
    for r in rows:
        lines.append(f"{r['id']:<22} {r['status']:<9} {r['method'] or '-':<8} {(r['model'] or '-')[:12]:<12} "
                     f"{(r['dataset'] or '-')[:10]:<10} {_num(r['lam'], '8.3g')} {_num(r['val_acc'], '7.2f')} "
                     f"{_num(r['compression'], '6.2f')} {_num(r['avg_bits'], '5.2f')} {_duration(r['duration']):>8}")
    return _print("\n".join(lines))


def show_command(args) -> int:
    store = RunStore(args.home, create=False)
    _schedule_unless_full(store)
    run = store.run(args.run)
    layers, latest = store.layers(args.run), store.latest_scalars(args.run)
    events = store.events(args.run)[-args.events:] if args.events > 0 else []
    if args.json:
        return _print(json.dumps({"run": run, "layers": layers, "latest": latest, "events": events}, indent=2))
    cfg = run["config"] or {}
    train = cfg.get("train", {})
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(run["created"]))
    lines = [f"run {run['id']}  {run['name'] or ''}".rstrip(),
             f"  status   {run['status']}  (created {when}, duration {_duration(run['duration'])}, "
             f"pid {run['pid'] or '-'} on {run['host'] or '-'}, device {run['device']})",
             f"  config   method {cfg.get('method')}, model {cfg.get('model')}, dataset {cfg.get('data', {}).get('name')}, "
             f"λ {_num(run['lam'], 'g')}, init bits {cfg.get('quant', {}).get('init_bits')}, epochs "
             f"{train.get('pretrain_epochs')}/{train.get('search_epochs')}/{train.get('finetune_epochs')}, "
             f"batch {train.get('batch_size')}, lr {train.get('lr')}"]
    if layers:
        lines.append(f"  {'layer':<28} {'kind':<9} {'params':>9} {'bits':>4}")
        lines += [f"  {l['fqn']:<28} {l['kind'] or '-':<9} {l['params'] or 0:>9} {l['bits'] or '-':>4}"
                  + (" (fixed)" if l["fixed"] else "") for l in layers]
    if latest:
        last = max(v["step"] for v in latest.values())
        text = ", ".join(f"{k}={_num(v['value'], '.4g')}" + ("" if v["step"] == last else f"@{v['step']}")
                         for k, v in sorted(latest.items()))
        lines += textwrap.wrap(text, 100, initial_indent=f"  last metrics at step {last}: ", subsequent_indent="    ",
                               break_long_words=False, break_on_hyphens=False)
    for e in events:
        payload = ", ".join(f"{k}={v}" for k, v in e["payload"].items())
        lines.append(f"  event step {e['step']:>6}  {e['kind']:<11} {payload}")
    for c in store.controls(args.run)[-args.events:] if args.events > 0 else []:
        answer = {"applied": f"applied at step {c['step']}", None: "pending"}.get(c["outcome"], c["outcome"])
        lines.append(f"  control  {c['key']}={c['value']}: {answer}" + (f" ({c['note']})" if c["note"] else ""))
    if run["error"]:
        lines.append(f"  error    {run['error']}")
    return _print("\n".join(lines))
