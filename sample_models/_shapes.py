"""Shape checks shared by the sample models (every model works at 8x8, 28x28 and 32x32)."""
from __future__ import annotations

from msq.errors import ConfigError


def check_image_size(model: str, image_size: int, minimum: int) -> None:
    """Refuse images too small for the model's downsampling, with the fix."""
    if not isinstance(image_size, int) or isinstance(image_size, bool) or image_size < minimum:
        raise ConfigError(f"image_size = {image_size!r} is too small for model {model!r}: "
                          f"allowed an integer >= {minimum}; use a dataset with larger images or another model")
