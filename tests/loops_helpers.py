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
