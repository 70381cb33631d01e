"""Generate and Evaluate keep their last launch's settings for a new tab; Evaluate clones an eval run."""

from __future__ import annotations

import json

from eval_helpers import make_dataset, make_train_run, one_thread  # noqa: F401 (autouse fixture)
from streamlit.testing.v1 import AppTest

from mirror_core import jobs, store
from mirror_core.ui import settings


def _gen_dataset(conn, name, n=4, n_dev=0):
    did = conn.execute("INSERT INTO datasets (name, source, task_type, content_hash, created_at)"
                       " VALUES (?, 'test', 'numeric', 'h', ?)", (name, store.now())).lastrowid
    for i in range(n + n_dev):
        conn.execute("INSERT INTO examples (dataset_id, ext_id, split, question, answer, task_type)"
                     " VALUES (?, ?, ?, ?, ?, 'numeric')",
                     (did, f"q{i}", "train" if i < n else "dev", f"What is {i} + 2?", str(i + 2)))


def test_generate_settings_survive_a_new_tab_but_api_keys_do_not(home, conn):
    _gen_dataset(conn, "a")
    _gen_dataset(conn, "b", n_dev=2)
    at = AppTest.from_file("../pages/2_Generate.py", default_timeout=60).run()
    at.selectbox(key="g_dataset").set_value("b")
    at.multiselect(key="g_teachers").set_value(["fake"])
    at.number_input(key="g_n").set_value(1)
    at.number_input(key="g_k").set_value(0)
    at.slider(key="g_temp").set_value(0.3)
    at.text_input(key="key_openai").set_value("sk-NOT-KEPT-123")
    at.run()
    at.number_input(key="g_dev_limit").set_value(1)
    at.button(key="g_launch").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    jobs.wait(conn, jobs.list_runs(conn, "generate")[0]["id"], poll_s=0.1, timeout_s=60)

    fresh = AppTest.from_file("../pages/2_Generate.py", default_timeout=60).run()  # a new tab's session
    assert not fresh.exception
    assert fresh.selectbox(key="g_dataset").value == "b"
    assert fresh.multiselect(key="g_teachers").value == ["fake"]
    assert (fresh.number_input(key="g_n").value, fresh.number_input(key="g_k").value) == (1, 0)
    assert fresh.slider(key="g_temp").value == 0.3 and fresh.number_input(key="g_dev_limit").value == 1
    assert fresh.text_input(key="key_openai").value == ""
    assert "sk-NOT-KEPT" not in (home / settings.FILE).read_text()


def test_generate_drops_a_remembered_dataset_that_is_gone(home, conn):
    _gen_dataset(conn, "a")
    settings.save("generate", {"g_dataset": "deleted", "g_teachers": ["fake", "gone:x"], "g_n": 2})
    at = AppTest.from_file("../pages/2_Generate.py", default_timeout=60).run()
    assert not at.exception
    assert at.selectbox(key="g_dataset").value == "a"
    assert at.multiselect(key="g_teachers").value == ["fake"] and at.number_input(key="g_n").value == 2


def test_evaluate_settings_survive_a_new_tab_and_clone_fills_the_form(home, conn):
    did = make_dataset(conn, n_test=3)
    # one dev question: submit refuses an eval of a split with no questions
    conn.execute("INSERT INTO examples (dataset_id, ext_id, split, question, answer, task_type)"
                 " VALUES (?, 'd0', 'dev', 'What is 2 + 2?', '4', 'numeric')", (did,))
    conn.commit()
    t1 = make_train_run(conn, home, did, name="one", checkpoint=False)
    t2 = make_train_run(conn, home, did, name="two", checkpoint=False)
    at = AppTest.from_file("../pages/5_Evaluate.py", default_timeout=60).run()
    assert at.selectbox(key="ev_train").value == t2  # newest first
    at.selectbox(key="ev_train").set_value(t1)
    at.selectbox(key="ev_split").set_value("dev")
    at.number_input(key="ev_samples").set_value(3)
    at.button(key="ev_go").click().run()
    assert not at.exception and "queued" in at.success[0].value
    queued = jobs.list_runs(conn, "eval")[0]["id"]
    jobs.stop(conn, queued, grace_s=0.5)  # the job itself is not what this test is about

    fresh = AppTest.from_file("../pages/5_Evaluate.py", default_timeout=60).run()
    fresh.session_state["ev_form_open"] = True  # an evaluation exists now: unfold it (a click in the browser)
    fresh.run()
    assert fresh.selectbox(key="ev_train").value == t1
    assert fresh.selectbox(key="ev_split").value == "dev" and fresh.number_input(key="ev_samples").value == 3

    # an eval run made elsewhere (CLI, experiment) with other settings: clone puts them in the form
    other = jobs.submit(conn, "eval", {"train_run": t2, "split": "test", "limit": 2, "samples": 5},
                        name="eval of run t2", start=False)
    fresh.session_state["ev_form_open"] = False  # folded again: Clone this run unfolds what it filled
    fresh.run()
    assert not fresh.number_input
    fresh.selectbox(key="ev_clone_pick").set_value(other)
    fresh.button(key="ev_clone").click().run()
    assert not fresh.exception
    assert fresh.selectbox(key="ev_train").value == t2
    assert (fresh.selectbox(key="ev_split").value, fresh.number_input(key="ev_limit").value,
            fresh.number_input(key="ev_samples").value) == ("test", 2, 5)
    fresh.button(key="ev_go").click().run()
    new = jobs.list_runs(conn, "eval")[0]
    jobs.stop(conn, new["id"], grace_s=0.5)
    stored = json.loads(new["config"])  # submit stores the full validated config
    assert {k: stored[k] for k in ("train_run", "split", "samples", "limit")} == {
        "train_run": t2, "split": "test", "samples": 5, "limit": 2}
