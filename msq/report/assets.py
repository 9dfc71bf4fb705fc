"""Files the exporters use from other installed packages, found without importing them:
plotly.js from the plotly package (``msq`` never imports plotly) and a Chromium for kaleido."""
from __future__ import annotations

import functools
import importlib.util
import os
import shutil
from pathlib import Path

from msq.errors import MSQError

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")


class MissingAssetError(MSQError, RuntimeError):
    """Something an export format needs (plotly.js, a Chromium) is not installed."""


@functools.lru_cache(maxsize=1)
def plotly_js_path() -> Path:
    """plotly.min.js as shipped inside the installed plotly package (package_data/)."""
    spec = importlib.util.find_spec("plotly")
    if spec is None or not spec.origin:
        raise MissingAssetError("the HTML report embeds plotly.js from the plotly package, which is not installed: "
                                "pip install plotly (see requirements.txt)")
    path = Path(spec.origin).parent / "package_data" / "plotly.min.js"
    if not path.is_file():
        raise MissingAssetError(f"plotly.js is missing from the installed plotly package (looked for {path}); "
                                "reinstall plotly: pip install --force-reinstall plotly")
    return path


@functools.lru_cache(maxsize=1)
def plotly_js() -> str:
    return plotly_js_path().read_text(encoding="utf-8")


def find_chromium() -> str:
    """A Chromium/Chrome executable: $MSQ_CHROMIUM or $BROWSER_PATH, else the first on PATH.
    Never downloads one (kaleido's Chrome download is not used)."""
    for var in ("MSQ_CHROMIUM", "BROWSER_PATH"):
        value = os.environ.get(var)
        if value:
            if Path(value).is_file() and os.access(value, os.X_OK):
                return value
            raise MissingAssetError(f"${var} = {value!r} is not an executable file: point it at chromium, or unset it")
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    raise MissingAssetError(
        "PNG/PDF figures are drawn by kaleido in a headless Chromium, and none was found "
        f"(looked for {', '.join(CHROMIUM_NAMES)} on PATH, $MSQ_CHROMIUM, $BROWSER_PATH). Install one "
        "(Debian/Ubuntu: `sudo apt-get install chromium`; macOS: install Google Chrome) or set "
        "MSQ_CHROMIUM=/path/to/chromium. The json, csv, md and html formats need no browser.")
