"""Run ids: generated, sortable by creation time, validated (never a path separator)."""
from __future__ import annotations

import re
import secrets
import time

from msq.errors import RunStoreError

RUN_ID_PATTERN = re.compile(r"^[0-9]{8}-[0-9]{6}-[0-9a-f]{6}$")


def new_run_id(now: float | None = None) -> str:
    """``YYYYMMDD-HHMMSS-xxxxxx`` in UTC: sorts by creation time; 24 random bits keep it unique."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(time.time() if now is None else now))
    return f"{stamp}-{secrets.token_hex(3)}"


def validate_run_id(run_id: object) -> str:
    """Return ``run_id`` if it is a well-formed id, else raise a RunStoreError saying what one looks like."""
    if not isinstance(run_id, str) or not RUN_ID_PATTERN.match(run_id):
        raise RunStoreError(f"invalid run id {run_id!r}: a run id looks like 20261123-120000-a1b2c3 "
                            "(see `python -m msq runs` for the ids of existing runs)")
    return run_id
