"""What makes a comparison of runs honest: runs grouped by model and dataset (never one plane for two
models), whether a run's numbers are final, and each run's training budget in words. Pure.

    >>> is_final({"status": "running"})
    False
    >>> budget_text({"train": {"pretrain_epochs": 1, "search_epochs": 2, "finetune_epochs": 1}})
    '4 epochs (1 pretrain + 2 search + 1 finetune)'
"""
from __future__ import annotations

from typing import Optional, Sequence

PHASES = ("pretrain", "search", "finetune")


def model_groups(rows: Sequence[dict]) -> dict[tuple[str, str], list[dict]]:
    """Runs grouped by (model, dataset), the largest group first (ties: the newest run's group)."""
    groups: dict[tuple[str, str], list[dict]] = {}
    for r in rows:
        groups.setdefault((r.get("model") or "?", r.get("dataset") or "?"), []).append(r)
    return dict(sorted(groups.items(), key=lambda kv: -len(kv[1])))


def group_name(group: tuple[str, str]) -> str:
    return f"{group[0]} on {group[1]}"


def is_final(row: dict) -> bool:
    """Only a completed run's accuracy and compression are its result; a running, queued, stopped or
    failed run shows where it was, not where it would have ended."""
    return row.get("status") == "completed"


def budget_epochs(config: Optional[dict]) -> Optional[int]:
    train = (config or {}).get("train") or {}
    try:
        return sum(int(train.get(f"{p}_epochs") or 0) for p in PHASES)
    except (TypeError, ValueError):
        return None


def budget_text(config: Optional[dict]) -> str:
    """The epochs a run was given, by phase: the first thing to check before comparing two runs."""
    train = (config or {}).get("train") or {}
    total = budget_epochs(config)
    if total is None or not train:
        return "budget unknown"
    parts = [f"{train.get(f'{p}_epochs')} {p}" for p in PHASES if train.get(f"{p}_epochs")]
    return f"{total} epoch{'s' if total != 1 else ''}" + (f" ({' + '.join(parts)})" if parts else "")


def progress_text(row: dict, config: Optional[dict]) -> str:
    """"not final: running, epoch 1 of 4" for a run that has not completed; "" for one that has."""
    if is_final(row):
        return ""
    total = budget_epochs(config)
    epoch = row.get("epoch")
    where = f", epoch {epoch} of {total}" if epoch is not None and total else ""
    return f"not final: {row.get('status') or 'unknown'}{where}"
