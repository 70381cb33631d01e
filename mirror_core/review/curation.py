"""Human curation of CoTs: edit in place with a revision history, revert, accept/reject/flag, bulk actions.

Concurrency is optimistic: every save names the revision the editor started from; if someone saved in
between, `ConflictError` is raised, nothing is written, and the caller still holds the unsaved text.
"""

from __future__ import annotations

import difflib
import sqlite3
from typing import Any

from mirror_core import answers, store
from mirror_core.errors import ConflictError, CurationError, FilterError, NotFoundError
from mirror_core.review import queries
from mirror_core.review.filters import ReviewFilter

STATUSES = ("active", "accepted", "rejected", "flagged")
ACTIONS = {"accept": "accepted", "reject": "rejected", "flag": "flagged", "reset": "active"}


def _rationale(conn: sqlite3.Connection, rationale_id: int) -> sqlite3.Row:
    row = conn.execute(
        "SELECT r.*, e.answer AS gold, e.task_type, e.choices FROM rationales r"
        " JOIN examples e ON e.id = r.example_id WHERE r.id = ?", (rationale_id,)).fetchone()
    if row is None:
        raise NotFoundError(f"CoT {rationale_id} does not exist (it may have been deleted); reload the page")
    return row


def edit_cot(conn: sqlite3.Connection, rationale_id: int, new_text: str, *, expected_revision: int,
             author: str = "human") -> dict[str, Any]:
    """Replace a CoT's text; re-parse its answer and recompute correctness; record the revision.

    Raises ConflictError if the CoT is no longer at `expected_revision` (someone else saved first).
    Returns the updated row as a dict.
    """
    if not new_text or not new_text.strip():
        raise CurationError(f"CoT {rationale_id}: the new text is empty; type its steps, or reject the CoT instead")
    with store.transaction(conn):
        row = _rationale(conn, rationale_id)
        if row["revision"] != expected_revision:
            raise ConflictError(
                f"CoT {rationale_id} was changed by someone else (now revision {row['revision']}, you started "
                f"from {expected_revision}); your text was not saved. Reload to see their change, then apply yours.")
        if new_text == row["text"]:
            return dict(row)
        parsed, parse_status, correct = answers.grade(new_text, row["gold"], row["task_type"], store.loads(row["choices"]))
        ts = store.now()
        new_rev = row["revision"] + 1
        cur = conn.execute(
            "UPDATE rationales SET text = ?, parsed_answer = ?, parse_status = ?, correct = ?, revision = ?,"
            " updated_at = ? WHERE id = ? AND revision = ?",
            (new_text, parsed, parse_status, correct, new_rev, ts, rationale_id, expected_revision))
        if cur.rowcount != 1:  # cannot happen under BEGIN IMMEDIATE, but never write history for a lost update
            raise ConflictError(f"CoT {rationale_id} changed while saving; reload and try again")
        conn.execute(
            "INSERT INTO rationale_revisions (rationale_id, revision, old_text, new_text, author, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?)", (rationale_id, new_rev, row["text"], new_text, author, ts))
        _mark_stale(conn, rationale_id, new_text)
    return dict(_rationale(conn, rationale_id))


def _mark_stale(conn: sqlite3.Connection, rationale_id: int, current: str) -> None:
    """Flag each self-evaluation whose judged text differs from the CoT's current text (m007).

    The judged text is the revision in effect when the evaluation was written, so a revert back to
    that text makes its evaluations current again.
    """
    revs = conn.execute("SELECT revision, old_text, new_text, created_at FROM rationale_revisions"
                        " WHERE rationale_id = ? ORDER BY revision", (rationale_id,)).fetchall()
    for ev in conn.execute("SELECT id, created_at, stale FROM self_evals WHERE rationale_id = ?",
                           (rationale_id,)).fetchall():
        judged = revs[0]["old_text"] if revs else current
        for r in revs:
            if r["created_at"] < ev["created_at"]:
                judged = r["new_text"]
        stale = int(judged != current)
        if stale != ev["stale"]:
            conn.execute("UPDATE self_evals SET stale = ? WHERE id = ?", (stale, ev["id"]))


def stale_count(conn: sqlite3.Connection, rationale_id: int) -> int:
    """How many of the CoT's self-evaluations were written about an earlier text."""
    return conn.execute("SELECT COUNT(*) FROM self_evals WHERE rationale_id = ? AND stale",
                        (rationale_id,)).fetchone()[0]


def reevaluate(conn: sqlite3.Connection, rationale_id: int, *, label: str | None = None, start: bool = True) -> int:
    """Queue the generate run that wrote this CoT again: its cached CoTs cost nothing and every CoT whose
    text changed gets new self-evaluations of its current text. Returns the new run id."""
    from mirror_core.generation import job as gen_job  # the generate stage's submit, checks included

    row = _rationale(conn, rationale_id)
    name = label or f"CoT {rationale_id}"
    run = conn.execute("SELECT * FROM runs WHERE id = ? AND kind = 'generate'", (row["run_id"],)).fetchone() \
        if row["run_id"] else None
    if run is None:
        raise CurationError(f"{name} was not written by a generate run here, so it cannot be re-evaluated "
                            "from this page; run generation for its dataset with self-evaluations (K > 0).")
    cfg = store.loads(run["config"]) or {}
    if not cfg.get("k_evals"):
        raise CurationError(f"{name} came from run {run['id']}, which wrote no self-evaluations (K = 0); "
                            "launch a generation with K > 0 on the Generate page.")
    return gen_job.submit(conn, cfg, name=f"re-evaluate edited CoTs (as run {run['id']})", start=start)


def history(conn: sqlite3.Connection, rationale_id: int) -> list[dict]:
    """The CoT's edits, oldest first: revision, author, created_at, old_text, new_text."""
    return [dict(r) for r in conn.execute(
        "SELECT revision, author, created_at, old_text, new_text FROM rationale_revisions"
        " WHERE rationale_id = ? ORDER BY revision", (rationale_id,))]


def text_at(conn: sqlite3.Connection, rationale_id: int, revision: int) -> str:
    """The CoT's text as it was at `revision` (0 = as the teacher wrote it)."""
    row = _rationale(conn, rationale_id)
    if revision == row["revision"]:
        return row["text"]
    if not 0 <= revision < row["revision"]:
        raise NotFoundError(f"CoT {rationale_id} has no revision {revision} (revisions 0..{row['revision']})")
    nxt = conn.execute("SELECT old_text FROM rationale_revisions WHERE rationale_id = ? AND revision = ?",
                       (rationale_id, revision + 1)).fetchone()
    if nxt is None:
        raise NotFoundError(f"CoT {rationale_id}: the history of revision {revision} is missing")
    return nxt[0]


def revert(conn: sqlite3.Connection, rationale_id: int, to_revision: int, *, expected_revision: int,
           author: str = "human") -> dict[str, Any]:
    """Bring back the text of an earlier revision, as a new revision (history is never rewritten)."""
    return edit_cot(conn, rationale_id, text_at(conn, rationale_id, to_revision),
                    expected_revision=expected_revision, author=author)


def diff(old: str, new: str, *, old_label: str = "before", new_label: str = "after") -> str:
    """A unified line diff of two CoT texts."""
    return "\n".join(difflib.unified_diff(old.splitlines(), new.splitlines(), old_label, new_label,
                                          lineterm=""))


def set_status(conn: sqlite3.Connection, rationale_ids: int | list[int], action: str,
               reason: str = "") -> int:
    """Accept / reject / flag (or reset to active) CoTs with a reason; returns how many changed."""
    status = _status(action)
    ids = [rationale_ids] if isinstance(rationale_ids, int) else list(rationale_ids)
    if not ids:
        return 0
    ts = store.now()
    with store.transaction(conn):
        n = 0
        for i in range(0, len(ids), 500):
            chunk = ids[i:i + 500]
            marks = ",".join("?" * len(chunk))
            found = conn.execute(f"SELECT COUNT(*) FROM rationales WHERE id IN ({marks})", chunk).fetchone()[0]
            if found != len(chunk):
                raise NotFoundError("some of the CoTs to update no longer exist; reload the page")
            n += conn.execute(f"UPDATE rationales SET status = ?, status_reason = ?, updated_at = ?"
                              f" WHERE id IN ({marks})", [status, reason.strip() or None, ts] + chunk).rowcount
    return n


def _status(action: str) -> str:
    if action in ACTIONS:
        return ACTIONS[action]
    if action in STATUSES:
        return action
    raise FilterError(f"unknown action '{action}'; use one of: {', '.join(ACTIONS)}")


def bulk_count(conn: sqlite3.Connection, f: ReviewFilter) -> int:
    """How many CoTs a bulk action over this filter would touch (show it before confirming)."""
    return queries.count(conn, f)["cots"]


def bulk_set_status(conn: sqlite3.Connection, f: ReviewFilter, action: str, reason: str = "", *,
                    expected_count: int) -> int:
    """Apply an action to every CoT the filter selects, in one transaction.

    `expected_count` is the count the user confirmed; if the selection changed meanwhile, ConflictError
    is raised and nothing changes.
    """
    status = _status(action)
    w, c, p = queries.where(f)
    with store.transaction(conn):
        n = conn.execute(f"{w}SELECT COUNT(*) {queries._FROM} WHERE {c}", p).fetchone()[0]
        if n != expected_count:
            raise ConflictError(f"the filter now selects {n} CoTs, not the {expected_count} you confirmed; "
                                "check the new count and confirm again")
        n_cte = 1 if w else 0  # the search's parameter comes first (in WITH), then SET's, then WHERE's
        conn.execute(
            f"{w}UPDATE rationales SET status = ?, status_reason = ?, updated_at = ?"
            f" WHERE id IN (SELECT r.id {queries._FROM} WHERE {c})",
            p[:n_cte] + [status, reason.strip() or None, store.now()] + p[n_cte:])
        # cursor.rowcount is -1 for a statement that starts with WITH; ask SQLite directly.
        changed = conn.execute("SELECT changes()").fetchone()[0]
    return changed

