"""AppTest for pages/2_Generate.py: estimate, template edit, launch with fake teachers, and a typed API key
that reaches the job through its environment only."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest

from mirror_core import jobs, prompts, store
from teacher_stub import Stub

PAGE = "../pages/2_Generate.py"


def _app():
    return AppTest.from_file(PAGE, default_timeout=60)


def _dataset(conn, n=4):
    conn.execute("INSERT INTO datasets (name, source, task_type, content_hash, created_at)"
                 " VALUES ('toy', 'test', 'numeric', 'h', ?)", (store.now(),))
    for i in range(n):
        conn.execute("INSERT INTO examples (dataset_id, ext_id, split, question, answer, task_type)"
                     " VALUES (1, ?, 'train', ?, ?, 'numeric')", (f"q{i}", f"What is {i} + 2?", str(i + 2)))


def test_empty_project_says_what_to_do(home, conn):
    at = _app().run()
    assert not at.exception
    assert any("Import one on the Data page" in i.value for i in at.info)


def test_estimate_launch_progress(home, conn):
    _dataset(conn)
    at = _app().run()
    assert not at.exception
    at.multiselect(key="g_teachers").set_value(["fake", "fake:b"])
    at.number_input(key="g_limit").set_value(3)
    at.run()
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Requests"] == str(3 * 2 * 3 * (1 + 2))  # 3 questions x 2 teachers x 3 CoTs x (1 + 2)
    assert metrics["Already answered"] == "0"
    at.button(key="g_launch").click().run()
    assert not at.exception and not at.error
    run_id = jobs.list_runs(conn, "generate")[0]["id"]
    row = jobs.wait(conn, run_id, poll_s=0.1, timeout_s=60)
    assert row["status"] == "succeeded"
    assert conn.execute("SELECT COUNT(*) FROM rationales").fetchone()[0] == 18
    at.run()
    assert {m.label: m.value for m in at.metric}["Already answered"] == "54"
    assert any("succeeded" in p.text for p in at.progress)  # the bar's text; its value is 0-100


def test_template_edit_makes_a_new_version(home, conn):
    _dataset(conn)
    at = _app().run()
    assert not [t for t in at.text_area if t.key.startswith("g_tpl_body_")]  # folded away: not drawn
    at.session_state["g_tpl_open"] = True  # unfold it (a click in the browser)
    at.run()
    at.selectbox(key="g_tpl").set_value("self-eval").run()
    body = prompts.get(conn, "self-eval").body
    area = [t for t in at.text_area if t.key.startswith("g_tpl_body_self-eval")][0]
    area.set_value(body + "\nBe brief.").run()
    at.session_state["g_tpl_open"] = False  # fold and unfold: the unsaved edit is still there
    at.run()
    at.session_state["g_tpl_open"] = True
    at.run()
    area = [t for t in at.text_area if t.key.startswith("g_tpl_body_self-eval")][0]
    assert area.value.endswith("Be brief.")
    at.button(key="g_tpl_save").click().run()
    assert not at.exception and not at.error
    assert prompts.get(conn, "self-eval").version == 2
    assert prompts.get(conn, "self-eval").body.endswith("Be brief.")


def test_typed_key_reaches_the_job_but_not_the_store(home, conn, monkeypatch):
    secret = "sk-PAGEKEY-91c2d"
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.setenv("HOME", str(home))  # no secrets.toml
    _dataset(conn, n=2)
    with Stub() as stub:
        at = _app().run()
        at.multiselect(key="g_teachers").set_value([])
        at.text_input(key="g_extra").set_value("openai:stub-model")
        at.number_input(key="g_n").set_value(1)
        at.number_input(key="g_k").set_value(0)
        at.run()
        at.button(key="g_launch").click().run()
        assert any("No API key for openai" in e.value and "OPENAI_API_KEY" in e.value for e in at.error)
        assert not jobs.list_runs(conn, "generate")
        # with a base URL but no key the job would start keyless; type the key instead
        at.text_input(key="key_openai").set_value(secret)
        at.text_input(key="g_base_url").set_value(stub.url + "/v1")
        at.run()
        at.button(key="g_launch").click().run()
        assert not at.exception and not at.error
        run_id = jobs.list_runs(conn, "generate")[0]["id"]
        row = jobs.wait(conn, run_id, poll_s=0.1, timeout_s=60)
        assert row["status"] == "succeeded", jobs.log_tail(row["log_path"])
        assert stub.requests and all(secret in r["auth"] for r in stub.requests)
    assert secret not in "\n".join(conn.iterdump())
    conn.execute("PRAGMA wal_checkpoint(FULL)")
    for p in home.rglob("*"):
        if p.is_file():
            assert secret.encode() not in p.read_bytes(), p


def test_local_teacher_run_that_takes_long_is_announced_before_launch(home, conn):
    _dataset(conn, n=20)
    at = _app().run()
    assert at.multiselect(key="g_teachers").value == ["local"]
    assert any("The local teacher needs up to" in w.value and "tokens/s measured" in w.value for w in at.warning)
    at.multiselect(key="g_teachers").set_value(["fake"]).run()
    assert not any("The local teacher needs" in w.value for w in at.warning)


def test_started_banner_stays_and_the_picker_follows_the_status(home, conn):
    _dataset(conn, n=2)
    at = _app().run()
    at.multiselect(key="g_teachers").set_value(["fake"])
    at.number_input(key="g_n").set_value(1)
    at.run()
    at.button(key="g_launch").click().run()
    run_id = jobs.list_runs(conn, "generate")[0]["id"]
    assert jobs.wait(conn, run_id, poll_s=0.1, timeout_s=60)["status"] == "succeeded"
    at.run()  # a later rerun (e.g. the fragment noticing the end) keeps the banner
    assert any(f"Run {run_id} started" in s.value for s in at.success)
    assert at.selectbox(key="g_run_pick").value == run_id
    assert "succeeded" in at.selectbox(key="g_run_pick").format_func(run_id)
    assert any(str(getattr(p, "text", "")).startswith("succeeded: ") for p in at.get("progress"))


def test_a_bad_teacher_spec_is_one_sentence_and_local_only_sets_short_caps(home, conn):
    _dataset(conn)
    at = _app().run()
    at.multiselect(key="g_teachers").set_value(["local"]).run()
    assert (at.number_input(key="g_max").value, at.number_input(key="g_emax").value) == (256, 160)
    at.text_input(key="g_extra").set_value("bogus:zzz").run()
    assert not at.exception
    assert [w.value for w in at.warning] == [
        "Unknown teacher 'bogus:zzz'; use palm (the built-in PaLM 540B CoTs for svamp and commonsense_qa), fake, "
        "fake:NAME, local (the offline SmolLM2), local:ID_OR_PATH, anthropic:MODEL, openai:MODEL (with a base URL "
        "for compatible servers) or replay:PATH."]
    assert not at.metric  # no estimate for a run that cannot start
