"""Finding the app's charts in an AppTest run: static drawings (SVG images named by their title) and
interactive Vega-Lite charts (mirror_core.ui.charts)."""

from __future__ import annotations

import base64

SVG_URI = "data:image/svg+xml;base64,"


def static_charts(at) -> dict[str, str]:
    """Each static chart on the page: its title (the image's alt text) -> its SVG."""
    out = {}
    for el in at.get("image"):
        for img in el.proto.imgs:
            if img.url.startswith(SVG_URI):
                out[img.alt] = base64.b64decode(img.url[len(SVG_URI):]).decode()
    return out


def live_charts(at) -> list:
    """The interactive (Vega-Lite) charts on the page."""
    return at.get("vega_lite_chart")
