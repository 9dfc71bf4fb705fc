"""Callbacks the engine tests share."""
from msq.training.callbacks import Callback


class CrashAfterEpoch(Callback):
    """Raises at the first step after epoch ``epoch`` ended (its checkpoint is written): a simulated crash."""

    def __init__(self, epoch):
        self.epoch = epoch

    def on_epoch_end(self, trainer, scalars):
        if trainer.state.epoch == self.epoch:
            trainer._crash = True

    def on_step_end(self, trainer, scalars):
        if getattr(trainer, "_crash", False):
            raise RuntimeError("simulated crash")
