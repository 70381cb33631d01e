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
