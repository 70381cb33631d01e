"""Seed a store with synthetic questions, CoTs, self-evaluations and peer reviews using plain SQL.

Used by the review tests and `bench/review_bench.py`, so neither depends on the import or teacher
pipelines. The data is deterministic for a given seed: arithmetic word problems with a known gold, CoTs
from several teachers (some wrong), and self-evaluations whose verdict is sometimes wrong about the CoT.
"""

from __future__ import annotations

import random
import sqlite3
from dataclasses import dataclass

from mirror_core import store

NAMES = ["Tom", "Ava", "Liam", "Mia", "Noah", "Zoe", "Omar", "Iris", "Jack", "Nina"]
THINGS = ["apples", "marbles", "stickers", "pencils", "cookies", "coins", "books", "shells"]


@dataclass
class Seeded:
    dataset_id: int
    examples: int
    rationales: int
    self_evals: int


def seed(conn: sqlite3.Connection, *, questions: int = 20, cots_per_question: int = 3,
         evals_per_cot: int = 3, teachers: tuple[str, ...] = ("fake", "local"), dataset: str = "seeded",
         reviews: bool = True, seed_value: int = 0, batch: int = 5000) -> Seeded:
    """Insert one numeric dataset and its CoTs; returns the counts written. Fast enough for 100k CoTs."""
    rng = random.Random(seed_value)
    ts = store.now()
    splits = ["train"] * 8 + ["dev", "test"]
    with store.transaction(conn):
        cur = conn.execute(
            "INSERT INTO datasets (name, source, task_type, content_hash, meta, created_at)"
            " VALUES (?, 'seed', 'numeric', ?, NULL, ?)", (dataset, f"seed-{seed_value}-{questions}", ts))
        dataset_id = cur.lastrowid
        ex_rows = []
        for i in range(questions):
            name, thing = rng.choice(NAMES), rng.choice(THINGS)
            a, b = rng.randint(2, 60), rng.randint(2, 60)
            q = f"{name} has {a} {thing} and gets {b} more. How many {thing} does {name} have now?"
            ex_rows.append((dataset_id, f"q{i}", splits[i % len(splits)], q, str(a + b), name, thing, a, b))
        conn.executemany(
            "INSERT INTO examples (dataset_id, ext_id, split, question, choices, answer, rationale, task_type)"
            " VALUES (?, ?, ?, ?, NULL, ?, NULL, 'numeric')", [r[:5] for r in ex_rows])
        first_ex = conn.execute("SELECT MIN(id) FROM examples WHERE dataset_id=?", (dataset_id,)).fetchone()[0]
        n_rat = n_eval = 0
        rats, evals, revs = [], [], []
        next_rat = (conn.execute("SELECT COALESCE(MAX(id), 0) FROM rationales").fetchone()[0]) + 1
        for i, (_, _, _, _, gold, name, thing, a, b) in enumerate(ex_rows):
            ex_id = first_ex + i
            for k in range(cots_per_question):
                teacher = teachers[k % len(teachers)]
                ok = rng.random() < 0.7
                ans = a + b if ok else a + b + rng.choice([-10, -2, -1, 1, 3, 7])
                text = (f"{name} starts with {a} {thing}.\n{name} gets {b} more {thing}.\n"
                        f"So {a} + {b} = {ans}.\nThe answer is {ans}.")
                rid = next_rat
                next_rat += 1
                rats.append((rid, ex_id, teacher, k, text, str(ans), int(ans == a + b), ts, ts))
                for j in range(evals_per_cot):
                    says_right = ok if rng.random() < 0.8 else not ok
                    verdict = rng.choice(["uncertain", "correct" if says_right else "wrong"]) \
                        if rng.random() < 0.1 else ("correct" if says_right else "wrong")
                    critique = (f"Checked the addition {a} + {b}: the steps look consistent."
                                if verdict == "correct" else
                                f"The sum {a} + {b} does not equal {ans}; the final step is off."
                                if verdict == "wrong" else "Hard to tell whether the count is right.")
                    evals.append((rid, teacher, j, critique, verdict, round(rng.uniform(0.5, 1.0), 2), ts))
                if reviews and rng.random() < 0.3:
                    revs.append((rid, teachers[(k + 1) % len(teachers)], rng.randint(1, 5),
                                 "Clear steps." if ok else "The arithmetic slips at the end.", ts))
                if len(evals) >= batch:
                    n_rat, n_eval = _flush(conn, rats, evals, revs, n_rat, n_eval)
        n_rat, n_eval = _flush(conn, rats, evals, revs, n_rat, n_eval)
    return Seeded(dataset_id, questions, n_rat, n_eval)


def _flush(conn, rats, evals, revs, n_rat, n_eval):
    conn.executemany(
        "INSERT INTO rationales (id, example_id, kind, author, sample_index, text, parsed_answer, correct,"
        " created_at, updated_at) VALUES (?, ?, 'cot', ?, ?, ?, ?, ?, ?, ?)", rats)
    conn.executemany(
        "INSERT INTO self_evals (rationale_id, evaluator, sample_index, critique, verdict, confidence,"
        " created_at) VALUES (?, ?, ?, ?, ?, ?, ?)", evals)
    conn.executemany(
        "INSERT INTO reviews (rationale_id, reviewer, score, text, created_at) VALUES (?, ?, ?, ?, ?)", revs)
    n_rat, n_eval = n_rat + len(rats), n_eval + len(evals)
    rats.clear(), evals.clear(), revs.clear()
    return n_rat, n_eval
