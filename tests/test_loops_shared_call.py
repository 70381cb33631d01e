"""A loop writes a rationale for every example it asked about, even when two examples share one cached
teacher call (the same question in two datasets), as generation does (issue 11.3)."""

from __future__ import annotations

from loops_helpers import context, make_dataset
from mirror_core.loops import steps


def _rationales(conn, call_id):
    return [dict(r) for r in conn.execute("SELECT id, example_id, author, text FROM rationales WHERE call_id = ?"
                                          " ORDER BY id", (call_id,))]


def test_shared_cached_call_gives_a_row_per_example(conn, home):
    first = steps.examples(conn, make_dataset(conn, "first", n_train=3, n_dev=0), "train")
    second = steps.examples(conn, make_dataset(conn, "second", n_train=3, n_dev=0), "train")
    assert first[0].question == second[0].question and first[0].id != second[0].id
    ctx = context(conn, home, {"loop": "mapd", "dataset": "second", "teachers": ["fake"]})
    teachers = steps.Teachers(conn, ctx.run_id, ["fake"], log=lambda m: None)
    asked = [first[0], second[0]]
    replies = teachers.ask("fake", [e.cot_prompt() for e in asked], purpose="rationale", template=("cot", 1))
    assert replies[0].ok and replies[0].call_id == replies[1].call_id  # one cached answer for both
    ids = [steps.insert_rationale(conn, example=e, kind="cot", author="fake", text=r.text, run_id=ctx.run_id,
                                  call_id=r.call_id) for e, r in zip(asked, replies)]
    rows = _rationales(conn, replies[0].call_id)
    assert [r["example_id"] for r in rows] == [first[0].id, second[0].id]
    assert ids == [r["id"] for r in rows]
    assert rows[0]["text"] == rows[1]["text"] == replies[0].text
    # Asking again for the same example reuses its row: no duplicate.
    again = teachers.ask("fake", [second[0].cot_prompt()], purpose="rationale", template=("cot", 1))[0]
    assert again.call_id == replies[1].call_id
    assert steps.insert_rationale(conn, example=second[0], kind="cot", author="fake", text=again.text,
                                  run_id=ctx.run_id, call_id=again.call_id) == ids[1]
    assert len(_rationales(conn, again.call_id)) == 2
