"""Page loads reuse work across browser sessions: a new tab or a reload is a new Streamlit session.

Review's facet cube (a scan of every CoT) is computed once per data version for all sessions, and again
after any commit; Train's loss figure is built once per logged-metrics version of a run.
"""

from __future__ import annotations

from pathlib import Path

from chart_helpers import static_charts
from streamlit.testing.v1 import AppTest

from mirror_core import jobs, store
from mirror_core.evaluation import plots
from mirror_core.review import queries, seed
from mirror_core.training.config import TrainConfig
from training_fixtures import make_snapshot

PAGES = Path(__file__).resolve().parent.parent / "pages"


def _session(page: str) -> AppTest:
    at = AppTest.from_file(str(PAGES / page), default_timeout=60).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_review_facet_cube_is_shared_by_sessions_until_a_commit(conn, home, monkeypatch):
    seed.seed(conn, questions=12, cots_per_question=2, evals_per_cot=1)
    scans = []
    real = queries._run

    def counting(c, sql, params):
        if "GROUP BY 1, 2, 3" in sql:
            scans.append(sql)
        return real(c, sql, params)

    monkeypatch.setattr(queries, "_run", counting)
    _session("3_Review.py")
    _session("3_Review.py")  # a second tab: no new scan
    assert len(scans) == 1
    rid = conn.execute("SELECT id FROM rationales ORDER BY id LIMIT 1").fetchone()[0]
    conn.execute("UPDATE rationales SET status = 'accepted' WHERE id = ?", (rid,))  # another process commits
    at = _session("3_Review.py")
    assert len(scans) == 2
    assert any("accepted (1)" in o for o in at.sidebar.selectbox(key="f_status").options)


def test_train_loss_figure_is_built_once_per_metrics_version(conn, home, monkeypatch):
    sid = make_snapshot(conn, "snap", n_train=2, n_dev=0)
    rid = jobs.submit(conn, "train", TrainConfig(student="tiny").to_dict(), snapshot_id=sid, start=False)
    conn.execute("UPDATE runs SET status = 'succeeded' WHERE id = ?", (rid,))
    for step in (1, 2):
        conn.execute("INSERT INTO metrics VALUES (?, ?, 'loss/answer', ?, ?)", (rid, step, 3.0 / step, store.now()))
    built = []
    real = plots.loss_panels
    monkeypatch.setattr(plots, "loss_panels", lambda series, log_y=False: built.append(series) or real(series, log_y))
    _session("4_Train.py")
    _session("4_Train.py")
    assert len(built) == 1
    conn.execute("INSERT INTO metrics VALUES (?, 3, 'loss/answer', 0.5, ?)", (rid, store.now()))
    at = _session("4_Train.py")
    assert len(built) == 2 and built[-1][f"run {rid}"]["loss/answer"][-1] == (3, 0.5)
    assert len(static_charts(at)) == 1


def test_runs_table_prices_each_snapshot_once(conn, home, monkeypatch):
    from mirror_core.evaluation import compare

    sid = make_snapshot(conn, "snap", n_train=2, n_dev=0)
    tid = jobs.submit(conn, "train", TrainConfig(student="tiny").to_dict(), snapshot_id=sid, start=False)
    for _ in range(3):  # three evals of one train run: one snapshot to price
        jobs.submit(conn, "eval", {"train_run": tid, "split": "test"}, snapshot_id=sid, parent_run_id=tid, start=False)
    priced = []
    real = compare.teacher_cost
    monkeypatch.setattr(compare, "teacher_cost", lambda c, s: priced.append(s) or real(c, s))
    table = compare.runs_table(conn)
    assert len(table) == 3 and priced == [sid]
    assert {r["teacher_cost_usd"] for r in table} == {real(conn, sid)}
