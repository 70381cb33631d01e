"""Figures of a comparison: plotly for the app, and a PNG export (plotly+kaleido, else matplotlib).

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


def accuracy_bars(rows: list[dict[str, Any]]):
    import plotly.graph_objects as go

    rows = [r for r in rows if r.get("accuracy") is not None]
    fig = go.Figure(go.Bar(
        x=[label(r) for r in rows], y=[r["accuracy"] for r in rows],
        error_y=dict(type="data", symmetric=False,
                     array=[(r["accuracy_hi"] or r["accuracy"]) - r["accuracy"] for r in rows],
                     arrayminus=[r["accuracy"] - (r["accuracy_lo"] or r["accuracy"]) for r in rows])))
    fig.update_layout(title="Accuracy (95% bootstrap interval)", yaxis=dict(range=[0, 1], title="accuracy"))
    return fig


def reliability_figure(results: dict[str, dict[str, Any]]):
    import plotly.graph_objects as go

    fig = go.Figure(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", line=dict(dash="dash", color="grey"),
                               name="perfect calibration"))
    for name, res in results.items():
        bins = res.get("reliability") or []
        fig.add_trace(go.Scatter(x=[b["confidence"] for b in bins], y=[b["accuracy"] for b in bins],
                                 mode="lines+markers", name=_with_ece(name, res),
                                 text=[f"{b['count']} items" for b in bins]))
    fig.update_layout(title="Reliability of self-evaluation", xaxis=dict(range=[0, 1], title="confidence P(correct)"),
                      yaxis=dict(range=[0, 1], title="accuracy"))
    return fig


def abstention_figure(results: dict[str, dict[str, Any]]):
    import plotly.graph_objects as go

    fig = go.Figure()
    for name, res in results.items():
        pts = res.get("abstention") or []
        fig.add_trace(go.Scatter(x=[p["coverage"] for p in pts], y=[p["accuracy"] for p in pts],
                                 mode="lines+markers", name=name))
    fig.update_layout(title="Abstaining on low self-confidence", xaxis=dict(range=[0, 1], title="coverage"),
                      yaxis=dict(range=[0, 1], title="accuracy of answered"))
    return fig


def loss_figure(series: dict[str, dict[str, list[tuple[int, float]]]]):
    import plotly.graph_objects as go

    fig = go.Figure()
    for run, keys in series.items():
        for key, pts in keys.items():
            fig.add_trace(go.Scatter(x=[s for s, _ in pts], y=[v for _, v in pts], mode="lines", name=f"{run} {key}"))
    fig.update_layout(title="Training loss", xaxis_title="step", yaxis_title="loss")
    return fig


def _loss_kind(key: str) -> tuple[str, str] | None:
    """('total' | task name, 'train' | 'dev') of a loss metric key, None for other metrics."""
    split = "dev" if key.startswith("dev/") else "train"
    rest = key[4:] if split == "dev" else key
    if rest == "loss":
        return "total", split
    if rest.startswith("loss/"):
        return rest[5:], split
    return None


def loss_panels(series: dict[str, dict[str, list[tuple[int, float]]]], log_y: bool = False):
    """Two panels sharing the step axis: the weighted total (sum of alpha x task loss) on top, the per-task
    losses below; train solid, dev dashed; one colour per task (and per run when several are given)."""
    import plotly.graph_objects as go
    from plotly.colors import qualitative
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.08,
                        subplot_titles=("Weighted total (Σ α · task loss)", "Per-task loss"))
    palette = qualitative.Plotly
    colours: dict[str, str] = {}
    many = len(series) > 1
    for run, keys in series.items():
        for key, pts in sorted(keys.items()):
            kind = _loss_kind(key)
            if kind is None or not pts:
                continue
            task, split = kind
            name = (f"{run} · " if many else "") + task
            colour = colours.setdefault(name, palette[len(colours) % len(palette)])
            fig.add_trace(go.Scatter(x=[s for s, _ in pts], y=[v for _, v in pts], mode="lines",
                                     name=f"{name} ({split})", legendgroup=name,
                                     line=dict(color=colour, dash="dash" if split == "dev" else "solid")),
                          row=1 if task == "total" else 2, col=1)
    fig.update_yaxes(title_text="loss", type="log" if log_y else "linear")
    fig.update_xaxes(title_text="step", row=2, col=1)
    fig.update_layout(height=560, legend_title_text="solid: train · dashed: dev", margin=dict(t=40))
    return fig


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
    """'kaleido' (plotly's exporter), 'matplotlib', or None when neither is installed."""
    if importlib.util.find_spec("kaleido") is not None:
        return "kaleido"
    if importlib.util.find_spec("matplotlib") is not None:
        return "matplotlib"
    return None


def save_png(path: str | Path, rows: list[dict[str, Any]], results: dict[str, dict[str, Any]],
             losses: dict[str, dict[str, list[tuple[int, float]]]] | None = None) -> tuple[Path, str]:
    """One PNG with accuracy bars, reliability diagrams, abstention and loss curves; returns (path, engine)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    engine = png_engine()
    if engine == "kaleido":
        try:
            _save_plotly(path, rows, results, losses or {})
            return path, engine
        except Exception:  # noqa: BLE001 - kaleido needs a Chrome; without one fall back to matplotlib
            if importlib.util.find_spec("matplotlib") is None:
                raise
            engine = "matplotlib"
    if engine == "matplotlib":
        _save_matplotlib(path, rows, results, losses or {})
        return path, engine
    raise EvaluationError("Cannot write a PNG: neither kaleido nor matplotlib is installed "
                          "(pip install matplotlib). The CSV export works without them.")


def _save_plotly(path, rows, results, losses) -> None:
    from plotly.subplots import make_subplots

    figs = [accuracy_bars(rows), reliability_figure(results), abstention_figure(results), loss_figure(losses)]
    grid = make_subplots(rows=2, cols=2, subplot_titles=[f.layout.title.text for f in figs])
    for k, f in enumerate(figs):
        for tr in f.data:
            grid.add_trace(tr, row=k // 2 + 1, col=k % 2 + 1)
    grid.update_layout(width=1200, height=900, showlegend=True)
    grid.write_image(str(path))


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
