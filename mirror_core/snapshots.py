"""Snapshots: a named, content-hashed, immutable copy of the training set under a selection policy.

Policies (rejected CoTs are always left out):
- ``all``: every CoT (Mind's Mirror distils all teacher CoTs with their self-evaluations);
- ``correct``: only CoTs whose answer matches the gold (Reasoning Teacher's filter);
- ``self-eval-correct``: only CoTs whose self-evaluations say "correct" by a strict majority;
- ``accepted``: only CoTs a reviewer accepted.
Any policy can be narrowed to some teachers (`teachers`: author specs such as 'replay:PaLM 540B').

`snapshot_items` holds one frozen row per (example, CoT): split, question, gold answer, the CoT text at
its current revision, and its current self-evaluations (not the stale ones, written about an earlier text)
as a JSON list of {critique, verdict, confidence}. The hash
is sha256 over the items in (example_id, rationale_id) order, so equal content gives an equal hash.
Triggers (migration m003) refuse any later UPDATE of a snapshot or its items.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
import tempfile
from pathlib import Path
from typing import Any, Iterator

from mirror_core import store
from mirror_core.errors import NotFoundError, SnapshotError

POLICIES = {
    "all": "1 = 1",
    "correct": "r.correct = 1",
    "self-eval-correct": "r.v_correct * 2 > r.v_correct + r.v_wrong + r.v_uncertain",
    "accepted": "r.status = 'accepted'",
}
POLICY_HELP = {
    "all": "every CoT that is not rejected (Mind's Mirror)",
    "correct": "only CoTs whose answer matches the gold (Reasoning Teacher)",
    "self-eval-correct": "only CoTs whose self-evaluations say correct (majority)",
    "accepted": "only CoTs a reviewer accepted",
}
ITEM_COLUMNS = ("example_id", "rationale_id", "revision", "split", "question", "answer", "cot", "self_evals")

# Self-evaluations are frozen in id order; unparsed ones (no verdict) carry nothing to learn from, and stale
# ones (m007: written about the CoT's text before a hand edit) judge text the snapshot does not hold.
_SELECT_ITEMS = (
    "SELECT e.id, r.id, r.revision, e.split, e.question, e.answer, r.text,"
    " (SELECT json_group_array(json_object('confidence', s.confidence, 'critique', s.critique,"
    "                                      'verdict', s.verdict))"
    "  FROM (SELECT * FROM self_evals WHERE rationale_id = r.id AND verdict IS NOT NULL AND NOT stale"
    "        ORDER BY id) s)"
    " FROM rationales r JOIN examples e ON e.id = r.example_id WHERE {where} ORDER BY e.id, r.id")


def _hasher() -> "hashlib._Hash":
    return hashlib.sha256()


def _feed(h, row) -> None:
    item = dict(zip(ITEM_COLUMNS, row))
    item["self_evals"] = json.loads(item["self_evals"]) if item["self_evals"] else []
    h.update(json.dumps(item, sort_keys=True, ensure_ascii=False).encode() + b"\n")


def teachers_available(conn: sqlite3.Connection, dataset: str | None = None) -> list[str]:
    """The authors of CoTs (teacher specs, e.g. 'openai:gpt-4o-mini', 'replay:PaLM 540B'), for selecting."""
    sql = "SELECT DISTINCT r.author FROM rationales r JOIN examples e ON e.id = r.example_id WHERE r.kind = 'cot'"
    args: list[Any] = []
    if dataset:
        sql += " AND e.dataset_id = (SELECT id FROM datasets WHERE name = ?)"
        args.append(dataset)
    return [r[0] for r in conn.execute(sql + " ORDER BY 1", args)]


def _teacher_filter(conn, teachers: list[str] | None, dataset: str | None) -> tuple[str | None, list[str]]:
    if not teachers:
        return None, []
    known = teachers_available(conn, dataset)
    unknown = [t for t in teachers if t not in known]
    if unknown:
        raise SnapshotError(f"no CoTs by {', '.join(repr(t) for t in unknown)}"
                            + (f" in dataset '{dataset}'" if dataset else "")
                            + f"; teachers with CoTs: {', '.join(known) or 'none yet'}")
    return f"r.author IN ({','.join('?' * len(teachers))})", list(teachers)


def create_snapshot(conn: sqlite3.Connection, name: str, policy: str, dataset: str | None = None,
                    teachers: list[str] | None = None) -> dict:
    """Freeze the current CoTs under `policy` as snapshot `name`; returns {id, name, policy, size, hash}.
    `teachers` (author specs) keeps only their CoTs."""
    name = (name or "").strip()
    if not name:
        raise SnapshotError("a snapshot needs a name, e.g. 'gsm8k-correct-v1'")
    if policy not in POLICIES:
        raise SnapshotError(f"unknown policy '{policy}'; use one of: {', '.join(POLICIES)}")
    with store.transaction(conn):  # BEGIN IMMEDIATE: nothing changes between hashing and copying
        if conn.execute("SELECT 1 FROM snapshots WHERE name = ?", (name,)).fetchone():
            raise SnapshotError(f"a snapshot named '{name}' already exists and snapshots are immutable; "
                                "choose another name")
        where = ["r.kind = 'cot'", "r.status != 'rejected'", POLICIES[policy]]
        params: list[Any] = []
        dataset_id = None
        if dataset:
            row = conn.execute("SELECT id FROM datasets WHERE name = ?", (dataset,)).fetchone()
            if row is None:
                raise NotFoundError(f"dataset '{dataset}' does not exist; see `python -m mirror_core data list`")
            dataset_id = row[0]
            where.append("e.dataset_id = ?")
            params.append(dataset_id)
        by_teacher, teacher_args = _teacher_filter(conn, teachers, dataset)
        if by_teacher:
            where.append(by_teacher)
            params += teacher_args
        select = _SELECT_ITEMS.format(where=" AND ".join(where))
        h, size, splits = _hasher(), 0, {}
        for row in conn.execute(select, params):  # streamed: memory does not grow with the snapshot
            _feed(h, row)
            size += 1
            splits[row[3]] = splits.get(row[3], 0) + 1
        if size == 0:
            raise SnapshotError(
                f"no CoTs match policy '{policy}'" + (f" in dataset '{dataset}'" if dataset else "")
                + (f" by {', '.join(teachers)}" if teachers else "")
                + "; generate CoTs first, or pick a looser policy (e.g. 'all')")
        digest = h.hexdigest()
        meta = {"description": POLICY_HELP[policy], "dataset": dataset, "splits": splits}
        if teachers:
            meta["teachers"] = list(teachers)
        sid = conn.execute(
            "INSERT INTO snapshots (name, policy, dataset_id, hash, size, meta, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (name, policy, dataset_id, digest, size, store.dumps(meta), store.now())).lastrowid
        conn.execute("INSERT INTO snapshot_items (snapshot_id, example_id, rationale_id, revision, split,"
                     " question, answer, cot, self_evals) SELECT ?, * FROM (" + select + ")", [sid] + params)
        conn.execute("INSERT INTO snapshot_costs (snapshot_id, teacher_cost_usd) VALUES (?, ?)",
                     (sid, _teacher_cost(conn, sid)))
    return {"id": sid, "name": name, "policy": policy, "size": size, "hash": digest, "dataset": dataset,
            "teachers": list(teachers) if teachers else None}


def _teacher_cost(conn: sqlite3.Connection, snapshot_id: int) -> float:
    """US$ spent on the teacher calls behind a snapshot's CoTs and their self-evaluations (each call once)."""
    return float(conn.execute(
        "SELECT COALESCE(SUM(cost_usd), 0) FROM teacher_calls WHERE id IN ("
        " SELECT r.call_id FROM rationales r JOIN snapshot_items s ON s.rationale_id = r.id WHERE s.snapshot_id = ?"
        " UNION SELECT se.call_id FROM self_evals se JOIN snapshot_items s ON s.rationale_id = se.rationale_id"
        " WHERE s.snapshot_id = ?)", (snapshot_id, snapshot_id)).fetchone()[0])


def teacher_cost(conn: sqlite3.Connection, snapshot_id: int) -> float:
    """US$ spent on the teacher calls behind a snapshot's CoTs and their self-evaluations, as summed when it
    was frozen (table snapshot_costs, migration m010): reading it costs nothing, summing it scans the snapshot."""
    row = conn.execute("SELECT teacher_cost_usd FROM snapshot_costs WHERE snapshot_id = ?", (snapshot_id,)).fetchone()
    return float(row[0]) if row is not None else _teacher_cost(conn, snapshot_id)


def get_snapshot(conn: sqlite3.Connection, name_or_id: str | int) -> dict:
    """A snapshot's row as a dict (meta decoded), by name or id."""
    row = None
    if isinstance(name_or_id, int) or str(name_or_id).isdigit():
        row = conn.execute("SELECT * FROM snapshots WHERE id = ?", (int(name_or_id),)).fetchone()
    if row is None:
        row = conn.execute("SELECT * FROM snapshots WHERE name = ?", (str(name_or_id),)).fetchone()
    if row is None:
        raise NotFoundError(f"snapshot '{name_or_id}' does not exist; see `python -m mirror_core snapshot list`")
    out = dict(row)
    out["meta"] = store.loads(out["meta"])
    return out


def list_snapshots(conn: sqlite3.Connection) -> list[dict]:
    """All snapshots, newest first, with their dataset name."""
    rows = conn.execute("SELECT s.*, d.name AS dataset FROM snapshots s LEFT JOIN datasets d"
                        " ON d.id = s.dataset_id ORDER BY s.id DESC").fetchall()
    out = []
    for r in rows:
        item = dict(r)
        item["meta"] = store.loads(item["meta"])
        out.append(item)
    return out


def has_split(conn: sqlite3.Connection, snapshot_id: int, split: str) -> bool:
    """Whether a snapshot froze any item of a split (Train warns when there is no dev split to select on)."""
    return conn.execute("SELECT 1 FROM snapshot_items WHERE snapshot_id = ? AND split = ? LIMIT 1",
                        (snapshot_id, split)).fetchone() is not None


def snapshot_rows(conn: sqlite3.Connection, snapshot_id: int, *, split: str | None = None,
                  with_choices: bool = True) -> Iterator[dict]:
    """The frozen items in (example_id, rationale_id) order, streamed; self_evals decoded to a list.

    With `with_choices`, each row also carries the example's `choices` (list or None) and `task_type`.
    """
    sql = ("SELECT i.*, e.choices, e.task_type FROM snapshot_items i JOIN examples e ON e.id = i.example_id"
           if with_choices else "SELECT i.* FROM snapshot_items i")
    sql += " WHERE i.snapshot_id = ?"
    params: list[Any] = [snapshot_id]
    if split:
        sql += " AND i.split = ?"
        params.append(split)
    for row in conn.execute(sql + " ORDER BY i.example_id, i.rationale_id", params):
        item = dict(row)
        item["self_evals"] = json.loads(item["self_evals"]) if item["self_evals"] else []
        if with_choices:
            item["choices"] = store.loads(item["choices"])
        item.pop("snapshot_id", None)
        yield item


def verify(conn: sqlite3.Connection, name_or_id: str | int) -> bool:
    """Whether the stored items still hash to the snapshot's recorded hash."""
    snap = get_snapshot(conn, name_or_id)
    h = _hasher()
    for row in conn.execute("SELECT " + ", ".join(ITEM_COLUMNS) + " FROM snapshot_items WHERE snapshot_id = ?"
                            " ORDER BY example_id, rationale_id", (snap["id"],)):
        _feed(h, tuple(row))
    return h.hexdigest() == snap["hash"]


def diff_snapshots(conn: sqlite3.Connection, a: str | int, b: str | int, *, sample: int = 5) -> dict:
    """What differs between two snapshots, keyed by (example, CoT).

    Returns counts (only_a, only_b, changed: same CoT with another revision or other self-evaluations,
    same) and up to `sample` example rows of each kind.
    """
    sa, sb = get_snapshot(conn, a), get_snapshot(conn, b)
    join = ("FROM snapshot_items x {kind} JOIN snapshot_items y ON y.snapshot_id = ? AND"
            " y.example_id = x.example_id AND y.rationale_id IS x.rationale_id WHERE x.snapshot_id = ?")
    only_a = conn.execute("SELECT COUNT(*) " + join.format(kind="LEFT") + " AND y.example_id IS NULL",
                          (sb["id"], sa["id"])).fetchone()[0]
    only_b = conn.execute("SELECT COUNT(*) " + join.format(kind="LEFT") + " AND y.example_id IS NULL",
                          (sa["id"], sb["id"])).fetchone()[0]
    changed_sql = " AND (x.cot IS NOT y.cot OR x.self_evals IS NOT y.self_evals OR x.revision IS NOT y.revision)"
    changed = conn.execute("SELECT COUNT(*) " + join.format(kind="") + changed_sql,
                           (sb["id"], sa["id"])).fetchone()[0]
    both = conn.execute("SELECT COUNT(*) " + join.format(kind=""), (sb["id"], sa["id"])).fetchone()[0]

    def rows(sql, params):
        return [dict(r) for r in conn.execute(sql + f" ORDER BY x.example_id, x.rationale_id LIMIT {int(sample)}",
                                              params)]

    pick = "SELECT x.example_id, x.rationale_id, x.split, substr(x.question, 1, 100) AS question "
    return {
        "a": sa["name"], "b": sb["name"], "a_hash": sa["hash"], "b_hash": sb["hash"],
        "identical": sa["hash"] == sb["hash"],
        "only_a": only_a, "only_b": only_b, "changed": changed, "same": both - changed,
        "samples": {
            "only_a": rows(pick + join.format(kind="LEFT") + " AND y.example_id IS NULL", (sb["id"], sa["id"])),
            "only_b": rows(pick + join.format(kind="LEFT") + " AND y.example_id IS NULL", (sa["id"], sb["id"])),
            "changed": rows(pick + ", x.revision AS revision_a, y.revision AS revision_b "
                            + join.format(kind="") + changed_sql, (sb["id"], sa["id"])),
        },
    }


def export_jsonl(conn: sqlite3.Connection, name_or_id: str | int, out: str | Path) -> int:
    """Write the snapshot as JSON Lines (one item per line); returns the number of lines."""
    snap = get_snapshot(conn, name_or_id)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".part")
    n = 0
    with tmp.open("w", encoding="utf-8") as fh:
        for item in snapshot_rows(conn, snap["id"]):
            fh.write(json.dumps(item, ensure_ascii=False, sort_keys=True) + "\n")
            n += 1
    tmp.replace(out)  # a half-written export never appears under the final name
    return n


def _features():
    import datasets

    return datasets.Features({
        "example_id": datasets.Value("int64"), "rationale_id": datasets.Value("int64"),
        "revision": datasets.Value("int64"), "split": datasets.Value("string"),
        "question": datasets.Value("string"), "answer": datasets.Value("string"),
        "cot": datasets.Value("string"), "task_type": datasets.Value("string"),
        "choices": datasets.Sequence(datasets.Value("string")),
        "self_evals": [{"critique": datasets.Value("string"), "verdict": datasets.Value("string"),
                        "confidence": datasets.Value("float64")}],
    })


def _generate(db_path: str, snapshot_id: int, split: str):
    # Opens its own connection: `datasets` fingerprints the generator's arguments, so they stay plain.
    conn = sqlite3.connect(db_path)
    conn.row_factory = sqlite3.Row
    try:
        for item in snapshot_rows(conn, snapshot_id, split=split):
            item["choices"] = item["choices"] or []
            yield item
    finally:
        conn.close()


def export_datasets(conn: sqlite3.Connection, name_or_id: str | int, out: str | Path) -> dict[str, int]:
    """Write the snapshot as a `datasets.DatasetDict` (one split per snapshot split) via save_to_disk.

    Rows are streamed through `Dataset.from_generator`, so memory stays flat. Returns rows per split.
    """
    import datasets

    snap = get_snapshot(conn, name_or_id)
    db_path = conn.execute("PRAGMA database_list").fetchone()["file"]
    splits = [r[0] for r in conn.execute(
        "SELECT DISTINCT split FROM snapshot_items WHERE snapshot_id = ? ORDER BY split", (snap["id"],))]
    cache = tempfile.mkdtemp(prefix="mirror-export-")
    try:
        dd = datasets.DatasetDict({
            split: datasets.Dataset.from_generator(
                _generate, features=_features(), cache_dir=cache, split=datasets.NamedSplit(split),
                gen_kwargs={"db_path": db_path, "snapshot_id": snap["id"], "split": split})
            for split in splits})
        dd.save_to_disk(str(out))
        return {k: len(v) for k, v in dd.items()}
    finally:
        shutil.rmtree(cache, ignore_errors=True)


def preview_counts(conn: sqlite3.Connection, dataset: str | None = None,
                   teachers: list[str] | None = None) -> dict[str, int]:
    """How many CoTs each policy would freeze now (before creating a snapshot), optionally of some teachers."""
    sums = ", ".join(f"SUM(CASE WHEN {cond} THEN 1 ELSE 0 END)" for cond in POLICIES.values())
    sql = (f"SELECT {sums} FROM rationales r JOIN examples e ON e.id = r.example_id"
           " WHERE r.kind = 'cot' AND r.status != 'rejected'")
    params: list[Any] = []
    if dataset:
        sql += " AND e.dataset_id = (SELECT id FROM datasets WHERE name = ?)"
        params.append(dataset)
    if teachers:
        sql += f" AND r.author IN ({','.join('?' * len(teachers))})"
        params += list(teachers)
    row = conn.execute(sql, params).fetchone()
    return {p: (row[i] or 0) for i, p in enumerate(POLICIES)}
