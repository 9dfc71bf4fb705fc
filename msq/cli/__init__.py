"""``python -m msq <command>``: each command lives in its own module with ``register(subparsers)``."""
from __future__ import annotations

import argparse
import importlib
import os
import re
import signal
import sqlite3
import sys
import traceback
from pathlib import Path
from typing import Optional

from msq import __version__
from msq.errors import MSQError
from msq.runs.disk import disk_full_reason, is_disk_full
from msq.runs.store import resolve_home

OWN_PACKAGES = ("msq", "sample_models", "dashboard")   # a missing module of these is a bug, not an install
COMMAND_MODULES = ["msq.cli.train", "msq.cli.catalog", "msq.cli.runs", "msq.cli.report", "msq.cli.sweep"]


class OneLineParser(argparse.ArgumentParser):
    """A usage error is one line, like every other error (the usage itself is in --help)."""

    def error(self, message: str):
        self.exit(2, f"error: {message} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
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
    except MSQError as exc:     # e.g. a method module named in $MSQ_METHOD_MODULES, met while building the parser
        print(f"error: {exc}", file=sys.stderr)
        return 2
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
    except Exception as exc:
        if isinstance(exc, (OSError, sqlite3.Error)) and is_disk_full(exc):
            print(f"error: {disk_full_reason(exc, resolve_home(getattr(args, 'home', None)))}", file=sys.stderr)
            return 1
        if not _raised_reading_a_checkpoint(exc):
            raise
        print(f"error: a checkpoint file could not be used ({type(exc).__name__}: {_first_line(exc)}): it is truncated, "
              "not a weights-only checkpoint or of another model; resume or retrain the run to write a new one",
              file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


CHECKPOINT_READERS = {("torch", "serialization.py"): "load", ("modules", "module.py"): "load_state_dict"}


def _raised_reading_a_checkpoint(exc: BaseException) -> bool:
    """True when ``exc`` came out of torch.load (a truncated file, a pickle weights_only refuses) or
    Module.load_state_dict (weights of another model): bad input, whichever command read the file."""
    for frame in traceback.extract_tb(exc.__traceback__):
        reader = CHECKPOINT_READERS.get(Path(frame.filename).parts[-2:])
        if reader == "load" or (reader is not None and frame.name == reader):
            return True
    return False


def _first_line(exc: BaseException, limit: int = 160) -> str:
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(exc)).strip()     # torch colours some messages
    text = (text.splitlines() or [type(exc).__name__])[0].strip()
    return text if len(text) <= limit else text[:limit - 3].rstrip() + "..."


def _detach_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush cannot raise again (Python's docs'
    recipe for SIGPIPE)."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
