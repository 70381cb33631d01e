"""Drawing the evaluation.plots charts on a page: full width, each named for screen readers (and the browser
tests) by its title. Vega-Lite (st.altair_chart) rather than plotly: plotly.js is a 4.7 MB bundle whose
parse and first draw cost ≈ 3 s of every page load with a chart on this machine, Vega ≈ 0.5 s
(bench/page_load_bench.py)."""

from __future__ import annotations

from typing import Any

from mirror_core.evaluation import plots


def chart(container: Any, figure: Any, key: str) -> None:
    container.altair_chart(figure, width="stretch", key=key, alt=plots.title_of(figure) or None)


def loss_panels(container: Any, panels: list, key: str) -> None:
    """The total and per-task loss panels, one chart each, then what the total means."""
    for k, panel in enumerate(panels):
        chart(container, panel, f"{key}_{k}")
    if panels:
        container.caption("Solid: train · dashed: dev. Drag to pan, scroll to zoom the step axis; double-click "
                          "resets. The total is Σ α · task loss over the tasks present in each step's batches, so "
                          "it dips when a batch holds fewer tasks; a two-stage schedule changes the tasks between "
                          f"stages. A line of more than {plots.MAX_LINE_POINTS} logged steps is drawn as means of "
                          "consecutive steps (its tooltip says how many).")
