"""Shared set-up for the loop tests: a small numeric dataset and an in-process loop job context."""

from __future__ import annotations

import json

from mirror_core import config, jobs, store


def make_dataset(conn, name="arith", n_train=8, n_dev=4):
    ts = store.now()
    cur = conn.execute("INSERT INTO datasets (name, source, task_type, content_hash, created_at) VALUES (?,?,?,?,?)",
                       (name, "test", "numeric", "h", ts))
    ds = cur.lastrowid
    rows = []
    for i in range(n_train + n_dev):
        a, b = 2 + i, 3 + 2 * i
        split = "train" if i < n_train else "dev"
        rows.append((ds, f"q{i}", split, f"What is {a} plus {b}?", None, str(a + b), None, "numeric"))
    conn.executemany("INSERT INTO examples (dataset_id, ext_id, split, question, choices, answer, rationale, task_type)"
                     " VALUES (?,?,?,?,?,?,?,?)", rows)
    return ds


def context(conn, home, cfg):
    run_id = jobs.submit(conn, "loop", cfg, start=False)
    conn.execute("UPDATE runs SET status='running' WHERE id=?", (run_id,))
    return jobs.JobContext(run_id=run_id, kind="loop", config=cfg, home=home, conn=conn,
                           run_dir=config.run_dir(run_id, home))


def paid_calls(conn, run_id):
    return conn.execute("SELECT COUNT(*) FROM teacher_calls WHERE run_id = ?", (run_id,)).fetchone()[0]


# A fake teacher that also reviews and judges, for the loops' accept / prefer paths. The project's
# FakeTeacher answers every non-self-eval request with a CoT, which carries no [score] and no [1]/[2].
import re as _re

from mirror_core.teachers.base import Completion
from mirror_core.teachers.fake import FakeTeacher, _unit


class ReviewingFake(FakeTeacher):
    """Scores rationales by a hash ([2], [4] or [5], sometimes no bracket) and judges pairs by length
    (the longer answer wins in both orders; equal lengths → always '[1]', an inconsistent judgment)."""

    def _one(self, req):
        purpose = (req.meta or {}).get("purpose")
        text = req.messages[-1]["content"]
        if purpose == "review":
            u = _unit("score", self.name, text)
            body = "Looks fine." if u < 0.15 else f"Reasonable. [{2 if u < 0.45 else 4 if u < 0.8 else 5}]"
        elif purpose == "judge":
            m = _re.search(r"Answer 1:\n(.*)\n\nAnswer 2:\n(.*)$", text, _re.S)
            a, b = (len(m.group(1).split()), len(m.group(2).split())) if m else (0, 0)
            body = "[2] it is more complete" if b > a else "[1] it reads better"
        else:
            return super()._one(req)
        if self._served_log:
            with open(self._served_log, "a") as f:
                f.write(f"{self.name}:{purpose}:{hash(text)}\n")
        return Completion(text=body, status="ok", finish_reason="stop", input_tokens=len(text.split()),
                          output_tokens=len(body.split()), raw={"fake": self.name})


def use_reviewing_fakes(monkeypatch):
    """Teachers named fake:NAME become ReviewingFake(NAME) for this test."""
    from mirror_core.teachers import registry

    real = registry.make_teacher

    def make(spec, *a, **k):
        if spec.startswith("fake:"):
            return ReviewingFake(spec.split(":", 1)[1])
        return real(spec, *a, **k)

    monkeypatch.setattr(registry, "make_teacher", make)


def served_lines(path):
    return path.read_text().splitlines() if path.exists() else []
