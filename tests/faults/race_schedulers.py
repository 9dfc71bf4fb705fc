"""A scheduler racing others for the fault tests: waits until START exists, then either claims queued
runs until none is left (``claim``) or calls the runner's ``schedule`` once (``schedule``), and prints
the ids it got as JSON. Usage: python race_schedulers.py HOME START claim|schedule"""
import json
import sys
import time
from pathlib import Path

from msq.runs import RunStore, runner


def main(home: str, start: str, mode: str) -> None:
    store = RunStore(home)
    while not Path(start).exists():
        time.sleep(0.001)
    if mode == "schedule":
        got = runner.schedule(store, max_runs={"cpu": 1})
    else:
        got = []
        while (claimed := runner.claim_next(store, {"cpu": 1000})) is not None:
            got.append(claimed)
    print(json.dumps(got))


if __name__ == "__main__":
    main(*sys.argv[1:4])
