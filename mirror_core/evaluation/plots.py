"""Figures of a comparison: Vega-Lite charts (Altair) for the app, and a PNG export (matplotlib).

Inputs are plain data (runs-table rows, eval results, loss series) so the page, the CLI and the
experiment draw the same figures.
"""

from __future__ import annotations

import importlib.util
import sqlite3
from pathlib import Path
from typing import Any

from mirror_core.errors import EvaluationError


def label(row: dict[str, Any]) -> str:
    return f"#{row['eval_run']} {row['method']}"


def loss_series(conn: sqlite3.Connection, train_run: int) -> dict[str, list[tuple[int, float]]]:
    """A train run's loss-like metrics ('loss', 'loss/answer', 'dev/loss', ...) as {key: [(step, value)]}."""
    out: dict[str, list[tuple[int, float]]] = {}
    for r in conn.execute("SELECT step, key, value FROM metrics WHERE run_id = ? AND key LIKE '%loss%'"
                          " ORDER BY key, step", (train_run,)):
        out.setdefault(r["key"], []).append((r["step"], r["value"]))
    return out


def loss_version(conn: sqlite3.Connection, train_run: int) -> tuple[int, int | None]:
    """(how many, last step) of the rows loss_series reads: it moves whenever the run logs a loss, so a
    figure built from them can be cached under it."""
    n, last = conn.execute("SELECT COUNT(*), MAX(step) FROM metrics WHERE run_id = ? AND key LIKE '%loss%'",
                           (train_run,)).fetchone()
    return n, last


def _with_ece(name: str, res: dict[str, Any]) -> str:
    """A reliability curve's legend: its name and ECE, 'n/a' when there is none (not 0.000, a perfect score)."""
    from mirror_core.evaluation.metrics import metric

    ece = metric("ece")
    return f"{name} ({ece.label} {ece.format(res.get('ece'))})"


def _frame(records: list[dict[str, Any]], columns: list[str]):
    import pandas as pd

    return pd.DataFrame.from_records(records, columns=columns)


def accuracy_bars(rows: list[dict[str, Any]]):
    """One bar per run with its 95% bootstrap interval as an error rule."""
    import altair as alt

    rows = [r for r in rows if r.get("accuracy") is not None]
    df = _frame([{"run": label(r), "accuracy": r["accuracy"],
                  "low": r["accuracy_lo"] if r["accuracy_lo"] is not None else r["accuracy"],
                  "high": r["accuracy_hi"] if r["accuracy_hi"] is not None else r["accuracy"]} for r in rows],
                ["run", "accuracy", "low", "high"])
    base = alt.Chart(df).encode(x=alt.X("run:N", sort=None, title=None, axis=alt.Axis(labelAngle=-20)))
    bars = base.mark_bar().encode(y=alt.Y("accuracy:Q", scale=alt.Scale(domain=[0, 1], nice=False)),
                                  tooltip=["run:N", alt.Tooltip("accuracy:Q", format=".1%"),
                                           alt.Tooltip("low:Q", format=".1%"), alt.Tooltip("high:Q", format=".1%")])
    rules = base.mark_rule(color="black").encode(y="low:Q", y2="high:Q")
    return (bars + rules).properties(title="Accuracy (95% bootstrap interval)", height=320)


def _curves(records: list[dict[str, Any]], x: tuple[str, str], y: tuple[str, str], colour: str, title: str,
            diagonal: bool = False):
    """Lines with points, one colour per `colour` value, on 0..1 axes; `diagonal` adds perfect calibration."""
    import altair as alt

    df = _frame(records, [x[0], y[0], colour, "n"])
    xs, ys = alt.Scale(domain=[0, 1], nice=False), alt.Scale(domain=[0, 1], nice=False)
    chart = alt.Chart(df).mark_line(point=True).encode(
        x=alt.X(f"{x[0]}:Q", scale=xs, title=x[1]), y=alt.Y(f"{y[0]}:Q", scale=ys, title=y[1]),
        color=alt.Color(f"{colour}:N", title=None, legend=alt.Legend(orient="bottom", direction="vertical")),
        tooltip=[f"{colour}:N", alt.Tooltip(f"{x[0]}:Q", format=".2f"), alt.Tooltip(f"{y[0]}:Q", format=".2f"),
                 alt.Tooltip("n:Q", title="items")])
    if diagonal:
        line = alt.Chart(_frame([{"p": 0.0}, {"p": 1.0}], ["p"])).mark_line(color="grey", strokeDash=[4, 4]).encode(
            x=alt.X("p:Q", scale=xs), y=alt.Y("p:Q", scale=ys))
        chart = line + chart
    return chart.properties(title=title, height=320)


def reliability_figure(results: dict[str, dict[str, Any]]):
    """Accuracy against stated confidence per bin, one line per run (its ECE in the legend); the dashed
    diagonal is perfect calibration."""
    recs = [{"confidence": b["confidence"], "accuracy": b["accuracy"], "run": _with_ece(name, res), "n": b["count"]}
            for name, res in results.items() for b in (res.get("reliability") or [])]
    return _curves(recs, ("confidence", "confidence P(correct)"), ("accuracy", "accuracy"), "run",
                   "Reliability of self-evaluation (dashed: perfect calibration)", diagonal=True)


def abstention_figure(results: dict[str, dict[str, Any]]):
    recs = [{"coverage": p["coverage"], "accuracy": p["accuracy"], "run": name, "n": p.get("n")}
            for name, res in results.items() for p in (res.get("abstention") or [])]
    return _curves(recs, ("coverage", "coverage"), ("accuracy", "accuracy of answered"), "run",
                   "Abstaining on low self-confidence")


def _loss_kind(key: str) -> tuple[str, str] | None:
    """('total' | task name, 'train' | 'dev') of a loss metric key, None for other metrics."""
    split = "dev" if key.startswith("dev/") else "train"
    rest = key[4:] if split == "dev" else key
    if rest == "loss":
        return "total", split
    if rest.startswith("loss/"):
        return rest[5:], split
    return None


LOSS_PANELS = ("Weighted total (Σ α · task loss)", "Per-task loss")


def loss_records(series: dict[str, dict[str, list[tuple]]]) -> list[dict[str, Any]]:
    """Long-form loss points {panel, series, split, step, loss, steps}: the total goes to the first panel, each
    task to the second; a series is the task, prefixed by the run when several runs are given. A point is
    (step, loss) or thin's (step, mean loss, steps averaged)."""
    many = len(series) > 1
    out = []
    for run, keys in series.items():
        for key, pts in sorted(keys.items()):
            kind = _loss_kind(key)
            if kind is None:
                continue
            task, split = kind
            name = (f"{run} · " if many else "") + task
            panel = LOSS_PANELS[0] if task == "total" else LOSS_PANELS[1]
            out += [{"panel": panel, "series": name, "split": split, "step": p[0], "loss": p[1],
                     "steps": p[2] if len(p) > 2 else 1} for p in pts]
    return out


# Points per line a loss chart draws. The browser evaluates every encoding per point (Vega's CSP-safe
# expression interpreter): two panels of 600 logged steps × 4 tasks cost ≈ 0.7 s of a page load here, 150
# steps ≈ 0.5 s, 60 ≈ 0.3 s (bench/page_load_bench.py), and a long GPU run logs thousands of steps.
MAX_LINE_POINTS = 120


def thin(points: list[tuple[int, float]], max_points: int = MAX_LINE_POINTS) -> list[tuple[int, float, int]]:
    """At most `max_points` (step, loss, n) points of a curve: consecutive runs of n logged steps averaged,
    each drawn at its last step, so the last point is the latest step. A short curve comes back whole (n = 1)."""
    if len(points) <= max_points:
        return [(s, v, 1) for s, v in points]
    size = -(-len(points) // max_points)  # ceil: never more than max_points buckets
    out = []
    for i in range(0, len(points), size):
        bucket = points[i:i + size]
        out.append((bucket[-1][0], sum(v for _, v in bucket) / len(bucket), len(bucket)))
    return out


def loss_panels(series: dict[str, dict[str, list[tuple[int, float]]]], log_y: bool = False,
                max_points: int = MAX_LINE_POINTS) -> list:
    """Two charts over the same step axis: the weighted total (Σ α · task loss), then the per-task losses;
    train solid, dev dashed; one colour per series, the same in both panels. A panel with no points is left
    out. Each chart zooms and pans on the step axis. A line longer than `max_points` is drawn as means of
    consecutive steps (`thin`; the tooltip says how many)."""
    import altair as alt

    recs = loss_records({run: {k: thin(pts, max_points) for k, pts in keys.items()} for run, keys in series.items()})
    steps = [r["step"] for r in recs]
    if not steps:
        return []
    x = alt.X("step:Q", title="step", scale=alt.Scale(domain=[min(steps), max(steps)], nice=False))
    y = alt.Y("loss:Q", title="loss", scale=alt.Scale(type="log" if log_y else "linear", zero=False))
    dash = alt.StrokeDash("split:N", title="line", scale=alt.Scale(domain=["train", "dev"], range=[[1, 0], [6, 4]]))
    names = sorted({r["series"] for r in recs})
    colour = alt.Color("series:N", title=None, scale=alt.Scale(domain=names))
    charts = []
    for panel in LOSS_PANELS:
        df = _frame([r for r in recs if r["panel"] == panel], ["panel", "series", "split", "step", "loss", "steps"])
        if df.empty:
            continue
        charts.append(alt.Chart(df).mark_line().encode(
            x=x, y=y, color=colour, strokeDash=dash, detail="split:N",
            tooltip=["series:N", "split:N", "step:Q", alt.Tooltip("loss:Q", format=".4g"),
                     alt.Tooltip("steps:Q", title="steps averaged")],
        ).properties(title=panel, height=240).interactive(bind_y=False))
    return charts


def title_of(chart) -> str:
    """A chart's title, for its accessible name on the page."""
    import altair as alt

    t = chart.title
    return "" if t is alt.Undefined else str(t)


def self_eval_trained(conn: sqlite3.Connection, train_run: int | None, result: dict[str, Any] | None = None) -> bool | None:
    """Whether a train run's tasks included the verdict (so its student's self-evaluation means something).

    Read from the eval result, else the train run's result or config tasks, else its method; None if unknown.
    """
    from mirror_core import store

    res = result or {}
    if "self_eval_trained" in res:
        return bool(res["self_eval_trained"])
    if res.get("tasks"):
        return "verdict" in res["tasks"]
    if train_run is None:
        return None
    row = conn.execute("SELECT config, result FROM runs WHERE id = ?", (train_run,)).fetchone()
    if row is None:
        return None
    for blob in (row["result"], row["config"]):
        d = store.loads(blob) or {}
        if d.get("tasks"):
            return "verdict" in d["tasks"]
    method = (store.loads(row["config"]) or {}).get("method")
    return {"mindsmirror": True, "step-by-step": False, "answer-only": False}.get(method)


NOT_SELF_EVAL = "not trained to self-evaluate"


def png_engine() -> str | None:
    """'matplotlib', or None when it is not installed. The export draws one PNG of all panels with matplotlib;
    the app's own charts are drawn by vl-convert (mirror_core.ui.charts), a separate path."""
    return "matplotlib" if importlib.util.find_spec("matplotlib") is not None else None


def save_png(path: str | Path, rows: list[dict[str, Any]], results: dict[str, dict[str, Any]],
             losses: dict[str, dict[str, list[tuple[int, float]]]] | None = None) -> tuple[Path, str]:
    """One PNG with accuracy bars, reliability diagrams, abstention and loss curves; returns (path, engine)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    engine = png_engine()
    if engine is None:
        raise EvaluationError("Cannot write a PNG: matplotlib is not installed (pip install matplotlib). "
                              "The CSV export works without it.")
    _save_matplotlib(path, rows, results, losses or {})
    return path, engine


def _save_matplotlib(path, rows, results, losses) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(2, 2, figsize=(13, 9))
    rows = [r for r in rows if r.get("accuracy") is not None]
    a = ax[0][0]
    acc = [r["accuracy"] for r in rows]
    err = [[x - (r["accuracy_lo"] or x) for x, r in zip(acc, rows)], [(r["accuracy_hi"] or x) - x for x, r in zip(acc, rows)]]
    a.bar(range(len(rows)), acc, yerr=err, capsize=4, color="#4c78a8")
    a.set_xticks(range(len(rows)), [label(r) for r in rows], rotation=15, fontsize=8)
    a.set_ylim(0, 1)
    a.set_title("Accuracy (95% bootstrap interval)")
    a = ax[0][1]
    a.plot([0, 1], [0, 1], "--", color="grey", label="perfect calibration")
    for name, res in results.items():
        bins = res.get("reliability") or []
        a.plot([b["confidence"] for b in bins], [b["accuracy"] for b in bins], "o-",
               label=_with_ece(name, res))
    a.set(xlim=(0, 1), ylim=(0, 1), xlabel="confidence P(correct)", ylabel="accuracy", title="Reliability of self-evaluation")
    a.legend(fontsize=7)
    a = ax[1][0]
    for name, res in results.items():
        pts = res.get("abstention") or []
        a.plot([p["coverage"] for p in pts], [p["accuracy"] for p in pts], ".-", label=name)
    a.set(xlim=(0, 1), ylim=(0, 1), xlabel="coverage", ylabel="accuracy of answered", title="Abstaining on low self-confidence")
    a.legend(fontsize=7)
    a = ax[1][1]
    for run, keys in losses.items():
        for key, pts in keys.items():
            a.plot([s for s, _ in pts], [v for _, v in pts], label=f"{run} {key}")
    a.set(xlabel="step", ylabel="loss", title="Training loss")
    if losses:
        a.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
