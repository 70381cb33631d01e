"""Loss panels (total and per-task apart, dev dashed, log option) and 'not trained to self-evaluate' on the
Evaluate page for runs whose training had no verdict task."""

from streamlit.testing.v1 import AppTest

from mirror_core import jobs, store
from mirror_core.evaluation import metrics, plots
from mirror_core.review import seed


def test_loss_panels_put_total_and_tasks_apart_with_dev_dashed():
    series = {"run 1": {"loss": [(1, 20.0), (2, 18.0)], "loss/answer": [(1, 9.0), (2, 8.0)],
                        "loss/cot": [(1, 11.0), (2, 10.0)], "dev/loss": [(2, 19.0)], "dev/loss/answer": [(2, 8.5)],
                        "lr": [(1, 1e-4)]}}
    total, tasks = plots.loss_panels(series, log_y=True)
    assert [plots.title_of(c) for c in (total, tasks)] == list(plots.LOSS_PANELS)
    lines = lambda c: set(zip(c.data["series"], c.data["split"]))  # noqa: E731
    assert lines(total) == {("total", "train"), ("total", "dev")}
    assert lines(tasks) == {("answer", "train"), ("answer", "dev"), ("cot", "train")}
    for chart in (total, tasks):
        enc = chart.to_dict()["encoding"]
        assert enc["y"]["scale"]["type"] == "log"
        # train solid, dev dashed; one colour per series, the same domain (so colours) in both panels
        assert enc["strokeDash"]["scale"] == {"domain": ["train", "dev"], "range": [[1, 0], [6, 4]]}
        assert enc["color"]["scale"]["domain"] == ["answer", "cot", "total"]
        assert enc["x"]["scale"]["domain"] == [1, 2]
    assert plots.loss_panels(series)[0].to_dict()["encoding"]["y"]["scale"]["type"] == "linear"


def test_loss_panels_name_series_by_run_when_several_and_skip_empty_panels():
    series = {"a": {"loss/answer": [(1, 9.0)]}, "b": {"loss/answer": [(1, 8.0)], "lr": [(1, 1e-4)]}}
    (tasks,) = plots.loss_panels(series)
    assert plots.title_of(tasks) == "Per-task loss"
    assert sorted(tasks.data["series"]) == ["a · answer", "b · answer"]
    assert plots.loss_panels({"a": {"lr": [(1, 1e-4)]}}) == []


def test_a_long_loss_line_is_thinned_to_means_of_consecutive_steps_ending_at_the_last_step():
    pts = [(s, float(s)) for s in range(1, 1001)]  # 1,000 logged steps
    thinned = plots.thin(pts, 120)
    assert len(thinned) <= 120
    assert sum(n for _, _, n in thinned) == 1000  # every step is in exactly one point
    assert thinned[-1][0] == 1000  # drawn up to the latest step
    assert thinned[0] == (9, sum(range(1, 10)) / 9, 9)  # ceil(1000 / 120) = 9 steps a point, their mean
    assert plots.thin(pts[:50], 120) == [(s, v, 1) for s, v in pts[:50]]  # short lines stay whole
    (tasks,) = plots.loss_panels({"r": {"loss/answer": pts, "dev/loss/answer": pts[::100]}}, max_points=120)
    rows = tasks.data
    assert len(rows[rows["split"] == "train"]) <= 120 and len(rows[rows["split"] == "dev"]) == 10
    assert rows["steps"].max() == 9 and rows[rows["split"] == "dev"]["steps"].max() == 1
    assert "steps averaged" in str(tasks.to_dict()["encoding"]["tooltip"])


def _runs(conn):
    seed.seed(conn, questions=8)
    ts = store.now()
    ids = {}
    for method, tasks in {"mindsmirror": ["answer", "cot", "verdict", "critique"], "answer-only": ["answer"]}.items():
        tid = jobs.submit(conn, "train", {"student": "tiny", "method": method, "tasks": tasks}, name=method, start=False)
        conn.execute("UPDATE runs SET status = 'succeeded', started_at = ?, finished_at = ? WHERE id = ?", (ts, ts, tid))
        conn.executemany("INSERT INTO metrics (run_id, step, key, value, created_at) VALUES (?, ?, ?, ?, ?)",
                         [(tid, s, k, v, ts) for s in (1, 2) for k, v in (("loss", 20.0 - s), ("loss/answer", 9.0 - s))])
        res = metrics.calibration_summary([0.9, 0.2, 0.8, 0.3], [1, 0, 1, 0])
        res.update(split="test", train_run=tid, tasks=tasks)  # no self_eval_trained key: read the tasks
        eid = jobs.submit(conn, "eval", {"train_run": tid, "split": "test"}, name=f"eval {tid}", parent_run_id=tid,
                          start=False)
        conn.execute("UPDATE runs SET status = 'succeeded', result = ? WHERE id = ?", (store.dumps(res), eid))
        ids[method] = (tid, eid)
    return ids


def test_self_eval_trained_reads_the_train_run(conn):
    ids = _runs(conn)
    assert plots.self_eval_trained(conn, ids["mindsmirror"][0]) is True
    assert plots.self_eval_trained(conn, ids["answer-only"][0]) is False
    assert plots.self_eval_trained(conn, None, {"self_eval_trained": False}) is False


def test_evaluate_page_says_not_trained_to_self_evaluate(home, conn):
    ids = _runs(conn)
    at = AppTest.from_file("../pages/5_Evaluate.py", default_timeout=60).run()
    assert not at.exception
    table = at.dataframe[0].value.set_index("eval_run")
    assert table.loc[ids["answer-only"][1], "auroc"] == plots.NOT_SELF_EVAL
    assert table.loc[ids["answer-only"][1], "ece"] == plots.NOT_SELF_EVAL
    assert float(table.loc[ids["mindsmirror"][1], "auroc"]) == 1.0
    assert any(plots.NOT_SELF_EVAL in c.value for c in at.caption)
