"""Errors users see. Each message says what is wrong, what is allowed, and how to fix it."""


class MSQError(Exception):
    """Base class of every error the engine raises on purpose."""


class ConfigError(MSQError, ValueError):
    """A config value is out of range or of the wrong type."""


class UnknownNameError(MSQError, KeyError):
    """An unknown model, dataset or run name; the message lists the known ones."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class DatasetNotFoundError(MSQError, FileNotFoundError):
    """A local dataset is missing; the message says where it was looked for and how to provide it."""


class ModelLoadError(MSQError, ValueError):
    """A user's model file, factory or checkpoint could not be loaded."""


class NothingToQuantizeError(MSQError, ValueError):
    """The model has no Conv2d/Linear layer left to quantize after the filters."""


class TrainingDivergedError(MSQError, RuntimeError):
    """The loss became NaN or infinite; the run stops instead of training on."""


class RunStoreError(MSQError, RuntimeError):
    """A run-store operation failed (unknown or invalid run id, corrupt record)."""


class CheckpointError(ModelLoadError):
    """No checkpoint of a run could be read; the message names each file tried and why it failed."""
