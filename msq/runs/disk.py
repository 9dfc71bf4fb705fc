"""A full disk: recognised in any error, said in one line, and survived by the worker that hits it
(standard library only).

A worker whose disk fills cannot write its own "failed" row (SQLite: "database or disk is full"), nor
a line to worker.log. So each worker keeps a small reserve file in its run folder and deletes it to
make room for those last writes:

    reserve = DiskReserve(run_dir); reserve.keep()      # at the start
    ...
    if is_disk_full(exc):
        reserve.release()                               # now the status row and the log line fit
        store.update_run(run_id, status="failed", error=disk_full_reason(exc, home))
"""
from __future__ import annotations

import errno
import os
import sqlite3
from pathlib import Path
from typing import Iterator, Optional

RESERVE_NAME = ".disk-reserve"
RESERVE_BYTES = 512 * 1024      # a status row, a log tail and a few lines of worker.log, many times over
MARK = "disk full:"             # how the worker's reason (and its last line in worker.log) begins
_FULL_ERRNOS = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ if exc.__cause__ is not None else (None if exc.__suppress_context__ else exc.__context__)


def _says_full(item: BaseException) -> bool:
    if isinstance(item, OSError):
        return item.errno in _FULL_ERRNOS
    return isinstance(item, sqlite3.Error) and (getattr(item, "sqlite_errorname", "") == "SQLITE_FULL"
                                                or "database or disk is full" in str(item))


def full_disk_error(exc: BaseException) -> Optional[BaseException]:
    """The first write that failed on a full disk in ``exc``'s chain (itself, its cause or context:
    a failed checkpoint, then the failed store write of its error), or None."""
    return next((item for item in reversed(list(_chain(exc))) if _says_full(item)), None)


def is_disk_full(exc: BaseException) -> bool:
    return full_disk_error(exc) is not None


def free_bytes(path: str | os.PathLike) -> Optional[int]:
    """Bytes an unprivileged writer may still use on ``path``'s file system (None if unknown)."""
    try:
        stat = os.statvfs(path)
    except OSError:
        return None
    return stat.f_bavail * stat.f_frsize


def disk_is_full(path: str | os.PathLike, below: int = 64 * 1024) -> bool:
    """Fewer than ``below`` bytes left on ``path``'s file system (SQLite's -shm file alone needs 32 KiB)."""
    free = free_bytes(path)
    return free is not None and free < below


def _what(error: BaseException) -> str:
    if isinstance(error, OSError):
        where = f" writing {error.filename}" if error.filename else ""
        return f"{error.strerror or 'no space left on device'}{where}"
    return f"the run store could not be written ({error})"


def disk_full_reason(exc: BaseException, home: str | os.PathLike) -> str:
    """One line: what could not be written, the space left, and the way out."""
    error = full_disk_error(exc) or exc
    free = free_bytes(home)
    space = "" if free is None else f"; {free:,} bytes free on the file system of {home}"
    return f"{MARK} {_what(error)}{space}. Free some space, then `python -m msq resume RUN` continues the run"


def store_full_note(home: str | os.PathLike) -> str:
    """What a reader says when its small bookkeeping writes fail on a full disk."""
    free = free_bytes(home)
    space = "" if free is None else f" ({free:,} bytes free)"
    return (f"the disk holding {home} is full{space}: dead workers are not marked and queued runs do not start "
            "until space is freed; what is shown is what was stored")


def full_disk_cause(log_tail: str, home: str | os.PathLike) -> Optional[str]:
    """Why a worker that recorded no end most likely died of a full disk, or None: its own last line
    in worker.log ("error: disk full: ..."), or a store whose disk is (nearly) full now."""
    lines = [line for line in (log_tail or "").splitlines() if line.startswith(f"error: {MARK}")]
    if lines:
        return f"it ran out of disk space and could not record it (worker.log: {lines[-1][len('error: '):]})"
    free = free_bytes(home)
    if free is not None and free < RESERVE_BYTES:
        return (f"the disk holding {home} is full ({free:,} bytes free), so most likely a write failed; "
                "free some space, then resume the run")
    return None


class DiskReserve:
    """A file of ``size`` bytes that holds space for the last writes of a worker on a full disk."""

    def __init__(self, folder: str | os.PathLike, size: int = RESERVE_BYTES) -> None:
        self.path, self.size = Path(folder) / RESERVE_NAME, size

    def keep(self) -> bool:
        """Create the reserve (really allocated, not sparse); False when the disk cannot hold it."""
        if self.path.is_file() and self.path.stat().st_size >= self.size:
            return True
        try:
            with open(self.path, "wb") as fh:
                fh.write(b"\0" * self.size)
                fh.flush()
                os.fsync(fh.fileno())
            return True
        except OSError:
            self.path.unlink(missing_ok=True)
            return False

    def release(self) -> bool:
        """Delete the reserve, freeing its space; False if there was none."""
        try:
            self.path.unlink()
            return True
        except FileNotFoundError:
            return False
