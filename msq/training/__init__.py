"""The training loop, its callbacks, MSQ's pruning and the methods it runs (``msq.train`` is the
notebook function in msq/api.py; this package is ``msq.training``)."""
