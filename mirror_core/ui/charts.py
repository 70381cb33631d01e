"""Drawing the evaluation.plots charts on a page, each named for screen readers (and the browser tests) by
its title: a static drawing by default, the interactive Vega-Lite chart (tooltips, zoom, pan) at a toggle.

Static first, because of page loads (issue 13: every page <= 1.5 s). The browser compiles and runs Vega
for any chart, however few its points: ≈ 0.35–0.45 s of every new tab that opens on one here, which kept
Train and Evaluate above the goal; an SVG image costs next to nothing (bench/page_load_bench.py). The
drawing is the same Vega-Lite spec rendered to SVG on the server by vl-convert (Vega itself, embedded),
so both looks are one chart: same scales, colours, dashes and titles. Vega-Lite rather than plotly:
plotly.js is a 4.7 MB bundle whose parse and first draw cost ≈ 3 s of every page load with a chart here.
"""

from __future__ import annotations

import functools
import hashlib
import json
import threading
from collections import OrderedDict
from typing import Any, Callable

import streamlit as st

from mirror_core.evaluation import plots

# Drawing widths (px) of a static chart; the image then stretches to its container, as the Vega one does.
FULL = 960
HALF = 460
PREFERENCE = "_charts_interactive"  # the session's choice, shared by every chart section on every page


def interactive(container: Any, key: str) -> bool:
    """The "Interactive charts" toggle of a chart section. The choice holds for the whole session (every
    section and page), so whoever wants tooltips turns it on once."""
    ss = st.session_state
    ss[key] = ss.get(PREFERENCE, False)  # before the widget: follow a change made in another section

    def remember() -> None:
        ss[PREFERENCE] = ss[key]

    return container.toggle("Interactive charts", key=key, on_change=remember,
                            help="Tooltips, zoom and pan. Off: the same charts as static drawings, which open "
                                 "the page faster (≈ 0.2–0.4 s of a load here). Holds for every page this session.")


@functools.cache
def warm_up(delay_s: float = 2.0) -> threading.Thread:
    """Start Vega in vl-convert once per process, in the background, a little after the app starts: the first
    drawing otherwise takes ≈ 0.6 s more (holding the GIL), paid by whoever opens the first chart."""
    def start() -> None:
        import time

        time.sleep(delay_s)  # after the first page's script run, not during it
        import vl_convert

        vl_convert.vegalite_to_svg('{"mark": "point"}')

    thread = threading.Thread(target=start, name="vega-warm-up", daemon=True)
    thread.start()
    return thread


def svg(figure: Any, width: int) -> str:
    """The SVG drawing of an Altair chart, `width` px wide. A conversion holds the GIL for ≈ 0.1 s (the first in
    a process ≈ 0.6 s), hence the cache in `build`. validate=False: the spec is our code's, checked by the tests
    and on the interactive path; validating it again costs as much as drawing it."""
    import vl_convert

    return vl_convert.vegalite_to_svg(figure.properties(width=width).to_json(validate=False))


def build(container: Any, make: Callable[..., Any], *args: Any, key: str, live: bool = False,
          width: int = FULL, conn: Any = None) -> None:
    """The chart, or list of charts, that `make(*args)` returns: interactive Vega-Lite when `live`, else their
    static drawings `width` px wide, stretched to the container. The drawings are cached by `make` and its
    arguments, so a chart whose data did not change costs neither Altair nor Vega: building the figures was
    ≈ 70% of Evaluate's script run (py-spy on the app server).
    `conn`, when given, is passed to `make` first and is not part of the key: the arguments say what is drawn."""
    if conn is not None:
        make = functools.wraps(make)(functools.partial(make, conn))
    if live:
        figures = make(*args)
        for k, figure in enumerate(figures if isinstance(figures, list) else [figures]):
            container.altair_chart(figure, width="stretch", key=f"{key}_{k}", alt=plots.title_of(figure) or None)
        return
    for title, drawing in _drawings(make, args, width):
        container.image(drawing, width="stretch", alt=title or None)


# (title, SVG) of each chart, by a digest of what drew it; shared by every session, the oldest dropped first.
# Not st.cache_data: its hasher walks every float of the arguments in Python (≈ 30 ms of each Evaluate load
# for the abstention curves), where json.dumps does it in C.
DRAWINGS: OrderedDict[str, list[tuple[str, str]]] = OrderedDict()
MAX_DRAWINGS = 256
_lock = threading.Lock()


def _drawings(make: Callable[..., Any], args: tuple, width: int) -> list[tuple[str, str]]:
    """(title, SVG) of each chart `make(*args)` returns; keyed by its name, arguments and width."""
    try:
        key = hashlib.sha256(json.dumps([make.__module__, make.__qualname__, width, args], sort_keys=True,
                                        default=repr).encode()).hexdigest()
    except TypeError:  # keys that do not sort (mixed types): drawn every time rather than cached wrongly
        key = None
    with _lock:
        if key in DRAWINGS:
            DRAWINGS.move_to_end(key)
            return DRAWINGS[key]
    figures = make(*args)
    drawn = [(plots.title_of(f), svg(f, width)) for f in (figures if isinstance(figures, list) else [figures])]
    if key is None:
        return drawn
    with _lock:
        DRAWINGS[key] = drawn
        while len(DRAWINGS) > MAX_DRAWINGS:
            DRAWINGS.popitem(last=False)
    return drawn


def loss_caption(container: Any, live: bool) -> None:
    """What the loss panels show: line styles, what the total sums, thinned lines."""
    how = ("Drag to pan, scroll to zoom the step axis; double-click resets. " if live else "")
    container.caption(f"Solid: train · dashed: dev. {how}The total is Σ α · task loss over the tasks present "
                      "in each step's batches, so it dips when a batch holds fewer tasks; a two-stage schedule "
                      f"changes the tasks between stages. A line of more than {plots.MAX_LINE_POINTS} logged "
                      "steps is drawn as means of consecutive steps (with Interactive charts on, its tooltip "
                      "says how many).")
