"""What the Loops page shows, as plain rows and one figure: read from `runs`, `loop_rounds` and the rows
the loops wrote. No torch here, so the page stays light."""

from __future__ import annotations

import sqlite3
from typing import Any

from mirror_core import store
from mirror_core.loops import steps as S


def loop_runs(conn: sqlite3.Connection, loop: str) -> list[dict[str, Any]]:
    """Runs of one loop, newest first, with config and status."""
    out = []
    for r in conn.execute("SELECT * FROM runs WHERE kind = 'loop' ORDER BY id DESC"):
        cfg = store.loads(r["config"]) or {}
        if cfg.get("loop") != loop:
            continue
        out.append({"id": r["id"], "status": r["status"], "dataset": cfg.get("dataset"), "student": cfg.get("student"),
                    "teachers": ", ".join(cfg.get("teachers") or []), "budget": cfg.get("budget"),
                    "rounds": cfg.get("rounds"), "progress": f"{r['progress_done']}/{r['progress_total']}",
                    "cost_usd": r["cost_usd"], "error": r["error"], "result": store.loads(r["result"])})
    return out


def steps_table(conn: sqlite3.Connection, run_id: int) -> list[dict[str, Any]]:
    """One line per recorded step: round, step, calls it issued, a one-line summary of its decision."""
    return [{"round": s["round"], "step": s["step"], "calls": s["calls_spent"], "decided": _summary(s["step"], s["decision"])}
            for s in S.rounds(conn, run_id)]


def _summary(step: str, d: dict) -> str:
    name = step.split("/")[-1]
    if name == "explain":
        return f"{len(d['questions'])} questions explained, {len(d['questions'][0]['texts']) if d['questions'] else 0} samples each"
    if name == "select":
        return f"selected {len(d['selected'])} of {len(d['scores'])} (B = {d['b']})"
    if name == "revise":
        return f"{sum(1 for r in d['revisions'] if r.get('revision_id'))} revision(s) by {d['teacher']}"
    if name == "train":
        if "phases" in d:
            return "; ".join(f"{p['phase']}: {p['items']} items" for p in d["phases"]) or "nothing to train on"
        return f"{d.get('items', 0)} item(s)" + (f" — {d['note']}" if d.get("note") else "")
    if name == "eval":
        return f"{d['split']} accuracy {d['accuracy']:.3f} after {d['calls']} call(s)"
    if name == "mine":
        return f"{d['n_wrong']} mistake(s) of {len(d['answered'])}; {len(d['mistakes'])} taken ({d['calls_per_mistake']} calls each)"
    if name in ("feedback", "rationale"):
        return f"{sum(1 for w in d['written'] if w.get('rationale_id'))} written"
    if name == "review":
        return f"{len(d['reviews'])} review(s), {sum(1 for r in d['reviews'] if r['score'] is None)} without a valid score"
    if name == "accept":
        return f"{d['accepted']} accepted, {d['rejected']} rejected (threshold {d['threshold']:g})"
    if name == "sample":
        return f"{sum(1 for q in d['questions'] if q.get('kept'))} pair(s) kept of {len(d['questions'])} question(s)"
    if name == "judge":
        return f"{d['consistent']} consistent of {len(d['pairs'])} pair(s)"
    if name == "dpo":
        return f"DPO on {d['pairs']} pair(s)" + (f", loss {d['loss_first']:.3f} → {d['loss_last']:.3f}" if d.get("steps") else "")
    if name == "winrate":
        return f"new vs old: {d['wins']} win / {d['ties']} tie / {d['losses']} loss of {d['n']}"
    return ""


def elad_selection(conn: sqlite3.Connection, run_id: int) -> list[dict[str, Any]]:
    """Every scored question per arm and round: its score parts and whether it was selected."""
    rows = []
    questions = {r["id"]: r["question"] for r in conn.execute("SELECT id, question FROM examples")}
    for s in S.rounds(conn, run_id):
        if not s["step"].endswith("/select"):
            continue
        d = s["decision"]
        chosen = {q["example_id"] for q in d["selected"]}
        for q in d["scores"]:
            rows.append({"round": s["round"], "arm": d["arm"], "example_id": q["example_id"],
                         "question": questions.get(q["example_id"], ""), "score": q["score"],
                         "entropy": q["entropy"], "disagreement": q["disagreement"],
                         "answers": ", ".join(str(a) for a in q["answers"]), "selected": q["example_id"] in chosen})
    return rows


def elad_curve(result: dict | None) -> list[dict[str, Any]]:
    """(arm, calls, accuracy) points of the accuracy-vs-teacher-calls plot."""
    return [{"arm": arm, **p} for arm, pts in ((result or {}).get("curve") or {}).items() for p in pts]


def curve_figure(points: list[dict[str, Any]]):
    """Accuracy against teacher calls spent, one line per arm (ELAD's selection against random)."""
    import altair as alt
    import pandas as pd

    df = pd.DataFrame.from_records(sorted(points, key=lambda p: (p["arm"], p["calls"])),
                                   columns=["arm", "calls", "accuracy"])
    return alt.Chart(df).mark_line(point=True).encode(
        x=alt.X("calls:Q", title="teacher calls spent"),
        y=alt.Y("accuracy:Q", title="accuracy", scale=alt.Scale(domain=[0, 1], nice=False)),
        color=alt.Color("arm:N", title=None), tooltip=["arm:N", "calls:Q", alt.Tooltip("accuracy:Q", format=".1%")],
    ).properties(title="Accuracy against teacher calls", height=320)


def mapd_matrix(conn: sqlite3.Connection, run_id: int) -> list[dict[str, Any]]:
    """Per question and rationale author: each reviewer's score, the mean, accepted or not and why."""
    rows = []
    for s in S.rounds(conn, run_id):
        if s["step"] != "accept":
            continue
        for q in s["decision"]["questions"]:
            for author, d in q["decisions"].items():
                row = {"round": s["round"], "example_id": q["example_id"], "author": author}
                for reviewer, score in q["matrix"].get(author, {}).items():
                    row[f"by {reviewer}"] = score
                row.update(mean=d["mean"], accepted=d["accepted"], why=d["reason"])
                rows.append(row)
    return rows


def preferences(conn: sqlite3.Connection, run_id: int) -> list[dict[str, Any]]:
    """The critic's preferences with both orders' choices and replies."""
    out = []
    for p in conn.execute("SELECT * FROM preferences WHERE run_id = ? ORDER BY id", (run_id,)):
        d = store.loads(p["detail"]) or {}
        out.append({"id": p["id"], "example_id": p["example_id"], "consistent": bool(p["consistent"]),
                    "choice (a first)": d.get("choice_ab"), "choice (b first)": d.get("choice_ba"),
                    "winner": d.get("winner"), "chosen": p["chosen"], "rejected": p["rejected"],
                    "reply (a first)": (d.get("order_ab") or {}).get("reply"),
                    "reply (b first)": (d.get("order_ba") or {}).get("reply"),
                    "distance": d.get("distance"), "length ratio": d.get("length_ratio")})
    return out


def winrates(conn: sqlite3.Connection, run_id: int) -> list[dict[str, Any]]:
    return [{"round": s["round"], "n": s["decision"]["n"], "wins": s["decision"]["wins"], "ties": s["decision"]["ties"],
             "losses": s["decision"]["losses"], "win rate": s["decision"]["win_rate"],
             "win+tie rate": s["decision"]["win_tie_rate"]}
            for s in S.rounds(conn, run_id) if s["step"] == "winrate"]
