"""A sweep's grid: dotted config keys -> lists of values, expanded to every combination."""
from __future__ import annotations

import itertools

from msq.errors import ConfigError


def grid_combinations(grid: dict[str, list]) -> list[dict]:
    """``{"reg.lam": [8, 32], "train.seed": [0, 1]}`` -> four dicts of changes, in a fixed order."""
    if not grid or any(not isinstance(v, list) or not v for v in grid.values()):
        raise ConfigError(f"sweep grid = {grid!r} is invalid: allowed a mapping of config keys to non-empty "
                          'lists, e.g. {"reg.lam": [8, 32]}')
    keys = list(grid)
    return [dict(zip(keys, values)) for values in itertools.product(*(grid[k] for k in keys))]
