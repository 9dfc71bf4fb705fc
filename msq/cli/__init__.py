"""``python -m msq <command>``: each command lives in its own module with ``register(subparsers)``."""
from __future__ import annotations

import argparse
import importlib
import sqlite3
import sys
from typing import Optional

from msq import __version__
from msq.errors import MSQError
from msq.runs.disk import disk_full_reason, is_disk_full
from msq.runs.store import resolve_home

COMMAND_MODULES = ["msq.cli.train", "msq.cli.catalog", "msq.cli.runs", "msq.cli.report", "msq.cli.sweep"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m msq", description="MSQ Studio: find per-layer bit-widths by bit-level sparsity.")
    parser.add_argument("--version", action="version", version=f"msq {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in COMMAND_MODULES:
        importlib.import_module(module).register(subparsers)
    return parser


def main(argv: Optional[list[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    try:
        return int(args.handler(args) or 0)
    except MSQError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (OSError, sqlite3.Error) as exc:
        if not is_disk_full(exc):
            raise
        print(f"error: {disk_full_reason(exc, resolve_home(getattr(args, 'home', None)))}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
