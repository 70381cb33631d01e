"""The static drawing of a chart is its Vega-Lite spec rendered by Vega (vl-convert): same titles, lines and
dashes as the interactive chart; a chart whose data did not change is not built or drawn again."""

from __future__ import annotations

import re

from mirror_core.evaluation import plots
from mirror_core.ui import charts

SERIES = {"run 1": {"loss": [(1, 2.0), (2, 1.5), (3, 1.25)], "loss/cot": [(1, 1.0), (2, 0.8), (3, 0.7)],
                    "dev/loss/cot": [(2, 0.9), (3, 0.85)]}}


def test_a_static_drawing_is_the_spec_drawn_by_vega():
    total, per_task = plots.loss_panels(SERIES)
    drawing = charts.svg(per_task, 400)
    assert drawing.startswith("<svg") and 'width="' in drawing
    assert "Per-task loss" in drawing and "Weighted total" not in drawing
    # train solid, dev dashed, as the spec's strokeDash scale says
    assert {"1,0", "6,4"} <= set(re.findall(r'stroke-dasharray="([^"]*)"', drawing))
    # both lines, each labelled as the interactive tooltip of its first point would say
    lines = re.findall(r'aria-label="step: (\d+); loss: ([\d.]+); series: cot; line: (train|dev)', drawing)
    assert sorted(lines) == [("1", "1", "train"), ("2", "0.9", "dev")]
    assert "Weighted total" in charts.svg(total, 400)


def test_an_unchanged_chart_is_not_built_or_drawn_again():
    charts.DRAWINGS.clear()
    built = []

    def make(series, log_y):
        built.append(log_y)
        return plots.loss_panels(series, log_y=log_y)

    first = charts._drawings(make, (SERIES, False), 300)
    assert [title for title, _ in first] == list(plots.LOSS_PANELS)
    assert charts._drawings(make, (SERIES, False), 300) == first and built == [False]
    assert charts._drawings(make, (SERIES, True), 300) != first and built == [False, True]  # other data: drawn
    assert charts._drawings(make, (SERIES, False), 400) != first and len(built) == 3  # other width: drawn


def test_vega_is_started_once_per_process_in_the_background():
    started = charts.warm_up(0.0)
    assert charts.warm_up(0.0) is started  # every script run of app.py calls it; one thread per process
    started.join(60)
    assert not started.is_alive()
