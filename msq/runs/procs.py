"""Is a run's worker still alive? Process checks the runner needs, standard library only.

A pid alone can lie: a dead worker's pid may be a zombie (still signalable) or, much later, reused
by an unrelated process. So a worker is alive only if its pid exists, is not a zombie, and (on Linux)
started at the same clock tick the runner recorded when it launched it.
"""
from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Optional

HOST = socket.gethostname()


def process_start_time(pid: int) -> Optional[int]:
    """Start time of ``pid`` in clock ticks since boot (field 22 of /proc/PID/stat), None if unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2:].split()   # the command name may contain spaces and ')'
    return int(fields[19])


def _proc_state(pid: int) -> Optional[str]:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat[stat.rindex(")") + 2:].split()[0]


def is_alive(pid: Optional[int], start_time: Optional[int] = None) -> bool:
    """True if ``pid`` runs and is the process that started at ``start_time`` (when given)."""
    if not pid:
        return False
    try:  # our own child that exited: collect it, so it does not linger as a zombie
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass          # exists, owned by someone else: the start time below decides
    if _proc_state(pid) in ("Z", "X"):
        return False
    if start_time is not None:
        now_start = process_start_time(pid)
        return now_start is None or now_start == start_time
    return True


def log_tail(path: Path, max_lines: int = 20, max_chars: int = 4000) -> str:
    """The last lines of a log file (empty if there is none)."""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(fh.tell() - max_chars, 0))
            text = fh.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.rstrip().splitlines()[-max_lines:])
