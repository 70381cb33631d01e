"""Small snapshots written with plain SQL (independent of snapshots.py), shared by the training tests."""

from __future__ import annotations

import json
import random

from mirror_core import store


def make_snapshot(conn, name: str = "snap", n_train: int = 12, n_dev: int = 4, seed: int = 0,
                  long: bool = False) -> int:
    """A dataset of arithmetic questions with a CoT and two self-evaluations each; returns the snapshot id."""
    rng = random.Random(seed)
    now = store.now()
    with store.transaction(conn):
        ds = conn.execute("INSERT INTO datasets (name, source, task_type, content_hash, created_at)"
                          " VALUES (?, 'test', 'numeric', 'h', ?)", (f"ds-{name}", now)).lastrowid
        sid = conn.execute("INSERT INTO snapshots (name, policy, dataset_id, hash, size, created_at)"
                           " VALUES (?, 'all', ?, 'h', ?, ?)", (name, ds, n_train + n_dev, now)).lastrowid
        for i in range(n_train + n_dev):
            split = "train" if i < n_train else "dev"
            a, b = rng.randint(2, 99), rng.randint(2, 99)
            q = f"Tom has {a} apples and buys {b} more. How many apples does he have?"
            steps = [f"Tom starts with {a} apples.", f"He buys {b} more.", f"{a} + {b} = {a + b}."]
            if long:
                steps = steps * rng.randint(3, 12)
            cot = "\n".join(steps + [f"The answer is {a + b}."])
            ex = conn.execute("INSERT INTO examples (dataset_id, ext_id, split, question, answer, task_type)"
                              " VALUES (?, ?, ?, ?, ?, 'numeric')", (ds, f"e{i}", split, q, str(a + b))).lastrowid
            rid = conn.execute("INSERT INTO rationales (example_id, author, text, created_at, updated_at)"
                               " VALUES (?, 'fake', ?, ?, ?)", (ex, cot, now, now)).lastrowid
            evals = [{"critique": f"The sum {a} + {b} is computed correctly.", "verdict": "correct", "confidence": 0.9},
                     {"critique": "Each step follows from the last.", "verdict": "correct", "confidence": 0.8}]
            conn.execute("INSERT INTO snapshot_items (snapshot_id, example_id, rationale_id, split, question, answer,"
                         " cot, self_evals) VALUES (?,?,?,?,?,?,?,?)",
                         (sid, ex, rid, split, q, str(a + b), cot, json.dumps(evals)))
    return sid
