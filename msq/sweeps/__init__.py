"""Sweeps past one machine through an existing scheduler (Ray Tune, optional: ``pip install "ray[tune]"``).
On one machine, the runner's per-device queue already runs a sweep (``python -m msq sweep``)."""
