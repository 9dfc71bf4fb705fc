"""``python -m msq <command>``: each command lives in its own module with ``register(subparsers)``."""
from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys
from typing import Optional

from msq import __version__
from msq.errors import MSQError

OWN_PACKAGES = ("msq", "sample_models", "dashboard")   # a missing module of these is a bug, not an install
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
    """Run one command; every error a user can cause ends in one line on stderr, never a traceback."""
    try:
        return _run_command(argv)
    except BrokenPipeError:     # `python -m msq show RUN | head`: the reader left; stop quietly
        _detach_stdout()
        return 128 + signal.SIGPIPE
    except ModuleNotFoundError as exc:
        if (exc.name or "").split(".")[0] in OWN_PACKAGES:
            raise                # a bug of ours, not a missing install
        print(f"error: the package {exc.name!r} is not installed for {sys.executable}: activate the project's "
              "virtual environment (source .venv/bin/activate) or run `make install`", file=sys.stderr)
        return 2


def _run_command(argv: Optional[list[str]]) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    try:
        code = int(args.handler(args) or 0)
        sys.stdout.flush()       # a closed pipe shows up here, inside the handling, not at exit
        return code
    except MSQError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def _detach_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush cannot raise again (Python's docs'
    recipe for SIGPIPE)."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
