from streamlit.testing.v1 import AppTest

from mirror_core import overview, store


def test_empty_project_guides_to_import_and_one_click_imports_gsm8k(home):
    at = AppTest.from_file("../app.py", default_timeout=120).run()
    assert not at.exception
    assert "Import a data set" in at.info[0].value
    at.button(key="import_gsm8k").click().run()
    assert not at.exception, at.exception
    conn = store.connect(home)
    assert conn.execute("SELECT COUNT(*) FROM examples").fetchone()[0] == 1319
    assert overview.next_step(conn).stage == "generate"
    assert "teacher" in at.info[0].value


def test_home_lists_running_jobs(home, conn):
    from mirror_core import jobs

    rid = jobs.submit(conn, "sleep", {"steps": 200, "interval": 0.1}, home=home)
    try:
        at = AppTest.from_file("../app.py", default_timeout=60).run()
        assert not at.exception
        df = at.dataframe[0].value
        assert rid in list(df["id"])
    finally:
        jobs.stop(conn, rid, grace_s=2)


def test_one_click_quick_start_gives_real_palm_cots_with_reference_verdicts(home):
    from mirror_core import jobs

    at = AppTest.from_file("../app.py", default_timeout=120).run()
    at.button(key="quickstart_svamp").click().run()
    assert not at.exception, at.exception
    assert "PaLM" in at.success[0].value
    conn = store.connect(home)
    run = conn.execute("SELECT id FROM runs WHERE kind = 'generate'").fetchone()
    assert jobs.wait(conn, run["id"], poll_s=0.5, timeout_s=120)["status"] == "succeeded"
    n_train = conn.execute("SELECT COUNT(*) FROM examples WHERE split IN ('train', 'dev')").fetchone()[0]
    cots = conn.execute("SELECT author, text, correct FROM rationales WHERE kind = 'cot'").fetchall()
    assert len(cots) == n_train == 800 and {c["author"] for c in cots} == {"palm"}
    assert 0.6 < sum(c["correct"] for c in cots) / len(cots) < 0.9  # PaLM's real accuracy, not all right
    verdicts = conn.execute("SELECT evaluator, COUNT(*) FROM self_evals GROUP BY evaluator").fetchall()
    assert [tuple(v) for v in verdicts] == [("reference", 800)]
    assert overview.next_step(conn).stage != "import"
