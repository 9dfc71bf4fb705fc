"""Where a queued run stands: its place in its device's queue (the runner starts queued runs oldest
first while the device has a free slot), how many runs are ahead of it and how many run now. Pure
apart from reading the device's run limit from the environment, as the runner does.

    >>> rows = [{"id": "b", "status": "queued", "device": "cpu", "created": 2.0},
    ...         {"id": "a", "status": "queued", "device": "cpu", "created": 1.0},
    ...         {"id": "r", "status": "running", "device": "cpu", "created": 0.0}]
    >>> queue_positions(rows, limit=lambda d: 1)["b"]["text"]
    '#2 in the cpu queue: 1 run ahead, 1 running (1 at a time on cpu); starts when a slot frees'
"""
from __future__ import annotations

from typing import Callable, Optional, Sequence

from msq.errors import MSQError
from msq.runs.runner import device_limit


def _device_group(device: Optional[str]) -> str:
    """The queue a run waits in: the CPU, or the GPUs (a run asking for "cuda" takes any free one)."""
    device = device or "cpu"
    return "cpu" if device == "cpu" else "gpu"


def _limit(device: str) -> Optional[int]:
    try:
        return device_limit(device)
    except MSQError:   # a bad limit in the environment: the queue page says nothing about it rather than fail
        return None


def queue_positions(rows: Sequence[dict], limit: Callable[[str], Optional[int]] = _limit) -> dict[str, dict]:
    """{queued run id: {"position", "ahead", "running", "device", "text"}} over ``list_runs`` rows."""
    out = {}
    groups = {_device_group(r.get("device")) for r in rows if r.get("status") == "queued"}
    for group in groups:
        queued = sorted((r for r in rows if r.get("status") == "queued" and _device_group(r.get("device")) == group),
                        key=lambda r: (r.get("created") or 0.0, r["id"]))
        running = sum(1 for r in rows if r.get("status") == "running" and _device_group(r.get("device")) == group)
        slots = limit(group)
        for position, r in enumerate(queued, start=1):
            ahead = position - 1
            rule = f" ({slots} at a time on {group})" if slots else ""
            when = "starts at the next queue check" if slots and running + ahead < slots else "starts when a slot frees"
            out[r["id"]] = {"position": position, "ahead": ahead, "running": running, "device": group,
                            "text": f"#{position} in the {group} queue: {ahead} run{'s' if ahead != 1 else ''} ahead, "
                                    f"{running} running{rule}; {when}"}
    return out
