"""Data page through AppTest: one-click built-in, upload with a column mapping, errors, browse and filter."""

from __future__ import annotations

import json

from streamlit.testing.v1 import AppTest

from mirror_core import store
from mirror_core.data.importing import import_source

PAGE = "../pages/1_Data.py"


def test_empty_project_then_builtin_import(home):
    at = AppTest.from_file(PAGE, default_timeout=120).run()
    assert not at.exception
    assert any("No data yet" in i.value for i in at.info)
    at.selectbox(key="builtin_choice").select("gsm8k")
    at.button(key="import_builtin").click().run()
    assert not at.exception, at.exception
    assert "imported 'gsm8k': 1319 examples" in at.success[0].value
    table = at.dataframe[-2].value
    assert list(table["name"]) == ["gsm8k"] and int(table["test"][0]) == 247


def test_upload_with_mapping_and_task_type(home):
    rows = [{"qid": f"r{i}", "prompt": f"Is {i} odd?", "verdict": "yes" if i % 2 else "no"} for i in range(20)]
    data = "".join(json.dumps(r) + "\n" for r in rows).encode()
    at = AppTest.from_file(PAGE, default_timeout=60).run()
    at.file_uploader(key="upload").set_value(("odd.jsonl", data, "application/json")).run()
    assert not at.exception, at.exception
    # "prompt" and "qid" are found by their usual names; the answer column needs mapping by hand.
    assert at.selectbox(key="map_question").value == "prompt"
    assert at.selectbox(key="map_id").value == "qid"
    at.selectbox(key="map_answer").select("verdict")
    at.selectbox(key="upload_task_type").select("free_text")
    at.text_input(key="upload_name").input("odds")
    at.button(key="import_upload").click().run()
    assert not at.exception, at.exception
    assert "imported 'odds': 20 examples" in at.success[0].value
    conn = store.connect(home)
    assert conn.execute("SELECT task_type FROM datasets WHERE name = 'odds'").fetchone()[0] == "free_text"


def test_upload_error_is_shown_and_nothing_written(home):
    at = AppTest.from_file(PAGE, default_timeout=60).run()
    at.file_uploader(key="upload").set_value(("bad.jsonl", b'{"question": "q", "answer": "x"}\n', "application/json")).run()
    at.selectbox(key="upload_task_type").select("numeric")
    at.button(key="import_upload").click().run()
    assert not at.exception
    assert "does not parse as numeric" in at.error[0].value
    assert store.connect(home).execute("SELECT COUNT(*) FROM datasets").fetchone()[0] == 0


def test_browse_filters_and_pages(home, conn, tmp_path):
    f = tmp_path / "sums.jsonl"
    f.write_text("".join(json.dumps({"id": i, "question": f"What is {i} plus one?", "answer": i + 1,
                                     "split": "test" if i < 60 else "train"}) + "\n" for i in range(120)))
    import_source(conn, str(f))
    at = AppTest.from_file(PAGE, default_timeout=60).run()
    assert not at.exception
    assert len(at.dataframe[-1].value) == 50
    at.selectbox(key="browse_split").select("test").run()
    at.number_input(key="browse_page").set_value(2).run()
    df = at.dataframe[-1].value
    assert len(df) == 10 and set(df["split"]) == {"test"}
    at.text_input(key="browse_search").input("What is 42 plus").run()
    df = at.dataframe[-1].value
    assert list(df["id"]) == ["42"] and list(df["answer"]) == ["43"]
