"""The tab icon, drawn here instead of named: a named icon (":material/…:" or an emoji) makes the
browser fetch it from a font CDN, which fails offline and is a request leaving the machine. The
picture is a tiny bit-allocation chart: four layers' bars in their widths' colours."""
from __future__ import annotations

from functools import lru_cache

from msq.report.chart_style import BIT_COLORS

BACKGROUND = "#ffffff"      # white: the 8-bit bar is the theme's navy
BARS = (8, 4, 6, 2)         # widths drawn, left to right


@lru_cache(maxsize=1)
def favicon(size: int = 64):
    """A ``size`` × ``size`` PIL image (streamlit serves it from this server like any media file)."""
    from PIL import Image, ImageDraw
    image = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    draw.rounded_rectangle((0, 0, size - 1, size - 1), radius=size // 6, fill=BACKGROUND, outline=BIT_COLORS[8], width=max(1, size // 32))
    pad, gap = size // 8, size // 16
    width = (size - 2 * pad - gap * (len(BARS) - 1)) / len(BARS)
    for i, bits in enumerate(BARS):
        x0 = pad + i * (width + gap)
        top = size - pad - (size - 2 * pad) * bits / max(BARS)
        draw.rectangle((round(x0), round(top), round(x0 + width) - 1, size - pad), fill=BIT_COLORS[bits])
    return image
