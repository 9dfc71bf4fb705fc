"""A run folder's checkpoint files and whether each is intact (standard library only).

    checkpoint.pt        the end of the last epoch: resume continues from here
    checkpoint.prev.pt   the epoch end before it, so a damaged checkpoint.pt costs one epoch, not the run
    checkpoint.stop.pt   the model where a stop was handled (mid-epoch): export and the report read it,
                         so they describe the step the run stopped at; resume restarts that epoch from
                         checkpoint.pt and deletes this file

A torch checkpoint is a zip archive: ``damage`` reads its directory and checks every member's CRC, so
a truncated, overwritten or bit-flipped file is found before torch reads it (and by tools, such as
the runner, that must not import torch).
"""
from __future__ import annotations

import os
import zipfile
from pathlib import Path
from typing import Optional

CHECKPOINT_NAME = "checkpoint.pt"
PREVIOUS_NAME = "checkpoint.prev.pt"
STOP_NAME = "checkpoint.stop.pt"
CORRUPT_SUFFIX = ".corrupt"          # a damaged checkpoint.pt set aside by resume (kept for inspection)
TMP_GLOB = ".checkpoint*.tmp"        # temporary files of an interrupted write


def resume_candidates(run_dir: str | os.PathLike) -> list[Path]:
    """What resume may continue from, newest first."""
    return [Path(run_dir) / CHECKPOINT_NAME, Path(run_dir) / PREVIOUS_NAME]


def read_candidates(run_dir: str | os.PathLike) -> list[Path]:
    """What export and the report read, newest first: the stop snapshot, then the epoch checkpoints."""
    return [Path(run_dir) / STOP_NAME, *resume_candidates(run_dir)]


def existing(paths: list[Path]) -> list[Path]:
    return [path for path in paths if path.is_file()]


def damage(path: Path) -> Optional[str]:
    """Why ``path`` is not a complete checkpoint archive, or None when it is intact."""
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
    except (zipfile.BadZipFile, EOFError) as exc:
        return f"truncated or not a checkpoint ({exc})"
    except OSError as exc:
        return f"unreadable ({exc.strerror or exc})"
    return None if bad is None else f"damaged (member {bad} fails its CRC check)"


def unreadable_message(problems: dict[Path, str], what: str) -> str:
    """One line: ``what`` cannot be done, which files were tried and why each failed, and the way out."""
    tried = "; ".join(f"{path} is {reason}" for path, reason in problems.items())
    names = " ".join(str(path) for path in problems)
    return (f"{what}: no readable checkpoint ({tried}). Delete them (rm {names}) to train the run again "
            "from its start with `python -m msq resume RUN`, or launch a new run")


def resume_problems(run_dir: str | os.PathLike) -> Optional[dict[Path, str]]:
    """{file: damage} when the run has checkpoints and none of them is intact; None when resume can
    go on (an intact one exists, or there are none and the run starts from its beginning)."""
    problems = {path: damage(path) for path in existing(resume_candidates(run_dir))}
    return problems if problems and all(problems.values()) else None


def remove_temporaries(run_dir: str | os.PathLike) -> list[Path]:
    """Delete what interrupted checkpoint writes left behind (one writer per run: none is in use)."""
    removed = []
    for path in Path(run_dir).glob(TMP_GLOB):
        try:
            path.unlink()
            removed.append(path)
        except FileNotFoundError:
            pass
    return removed
