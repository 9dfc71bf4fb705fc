"""PNG and PDF figures through kaleido 1.x, in the Chromium this machine has (never a downloaded one).

    images = render_images(report_figures(report), "png")     # {"allocation": b"\\x89PNG...", ...}

kaleido is given plotly.js from the installed plotly package and no MathJax, so rendering needs no
network. All figures of one call share one browser (starting it is most of the cost).
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import copy

from msq.errors import MSQError
from msq.report.assets import MissingAssetError, find_chromium, plotly_js_path

IMAGE_FORMATS = ("png", "pdf")
WIDTH = 1000          # CSS pixels; the page's figures are about this wide
PNG_SCALE = 2         # device pixels per CSS pixel: crisp on high-density screens and in slides
TIMEOUT_S = 90


def _static(spec: dict) -> dict:
    """A copy sized for a static image (the page's figures are responsive and have no width)."""
    spec = copy.deepcopy(spec)
    layout = spec.setdefault("layout", {})
    layout.setdefault("width", WIDTH)
    layout.setdefault("height", 420)
    # a standalone image has no page around it: leave a little white space at the edges
    margin = layout.setdefault("margin", {})
    for side, least in (("l", 24), ("r", 24), ("b", 16)):
        margin[side] = max(margin.get(side, 0), least)
    title = layout.get("title")
    if isinstance(title, dict) and title.get("x", 0.5) < 0.02 and title.get("xanchor") == "left":
        title["x"] = 16 / layout["width"]          # the title starts at the image's edge otherwise
    return spec


async def _render_all(specs: dict[str, dict], fmt: str, chromium: str) -> dict[str, bytes]:
    import kaleido   # heavy (starts nothing until used); imported only for images

    opts = {"format": fmt, "scale": PNG_SCALE if fmt == "png" else 1}
    out = {}
    async with kaleido.Kaleido(n=1, timeout=TIMEOUT_S, plotlyjs=str(plotly_js_path()), mathjax=False,
                               path=chromium) as k:
        for name, spec in specs.items():
            static = _static(spec)
            out[name] = await k.calc_fig(static, opts={**opts, "width": static["layout"]["width"],
                                                       "height": static["layout"]["height"]})
    return out


def render_images(specs: dict[str, dict], fmt: str) -> dict[str, bytes]:
    """Each plotly-JSON spec as PNG or PDF bytes. Raises MissingAssetError (with how to install one)
    when no Chromium is found. Runs in its own thread and event loop, so it also works where a loop is
    already running (a notebook)."""
    if fmt not in IMAGE_FORMATS:
        raise MSQError(f"image format {fmt!r} is invalid: allowed {', '.join(IMAGE_FORMATS)}")
    chromium = find_chromium()
    try:
        import kaleido  # noqa: F401
    except ImportError:
        raise MissingAssetError("PNG/PDF figures need kaleido 1.x: pip install kaleido "
                                "(see requirements.txt); the html format shows the same figures") from None
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        future = pool.submit(asyncio.run, _render_all(specs, fmt, chromium))
        try:
            return future.result()
        except MissingAssetError:
            raise
        except Exception as exc:
            raise MSQError(f"kaleido could not render the figures with {chromium} "
                           f"({type(exc).__name__}: {exc}); the html format shows the same figures") from exc
