"""SQL-side filtering, search, counts and per-question detail for the Review page.

Everything here pages in SQL (LIMIT/OFFSET) and aggregates in SQL, so the page's memory does not grow
with the store. A filter selects CoTs (rationales of one kind); a question matches when one of its CoTs
does. Verdict filters read the per-CoT counters `v_correct/v_wrong/v_uncertain` (kept by triggers,
migration m003).

Full-text search reads the FTS5 table `review_cot_fts` (migration m006): one document per CoT holding its
question, its text and its critiques, under rowid = (example_id << 32) | CoT id. A CoT matches when every
search term occurs in that document (terms may come from different parts: a question word and a critique
word). Because rowids sort by question, a search-only count and the first page in question order are
read straight from the index (no join), and a search combined with other filters walks the index in
question order and stops at the page.
"""

from __future__ import annotations

import re
import sqlite3
from collections import Counter
from typing import Any

from mirror_core import store
from mirror_core.agreement import agreement
from mirror_core.errors import FilterError, NotFoundError
from mirror_core.review.filters import ReviewFilter

_FROM = "FROM rationales r JOIN examples e ON e.id = r.example_id"
# review_cot_fts rowid = (example_id << _SHIFT) | rationale id (migration m006)
_SHIFT = 32
_ID_MASK = (1 << _SHIFT) - 1
# Walk the search index in rowid (= question, CoT) order and join each hit's CoT: for pages in
# question order, which then stop at the page instead of collecting every hit.
_FTS_FROM = (f"FROM review_cot_fts CROSS JOIN rationales r ON r.id = (review_cot_fts.rowid & {_ID_MASK})")
_TERM_RE = re.compile(r'"([^"]*)"|([^\s"]+)')

# The question order for each sort (aggregates over the question's matching CoTs), then a tie-break.
_QUESTION_ORDER = {
    "question": "r.example_id",
    "most_wrong_verdicts": "SUM(r.v_wrong) DESC, r.example_id",
    "fewest_correct_verdicts":
        "SUM(r.v_correct) * 1.0 / MAX(1, SUM(r.v_correct + r.v_wrong + r.v_uncertain)), r.example_id",
    "recently_updated": "MAX(r.updated_at) DESC, r.example_id",
    "teacher": "MIN(r.author), r.example_id",
}
_COT_ORDER = {
    "question": "r.example_id, r.id",
    "most_wrong_verdicts": "r.v_wrong DESC, r.id",
    "fewest_correct_verdicts":
        "r.v_correct * 1.0 / MAX(1, r.v_correct + r.v_wrong + r.v_uncertain), r.id",
    "recently_updated": "r.updated_at DESC, r.id",
    "teacher": "r.author, r.example_id, r.id",
}


def fts_query(text: str) -> str | None:
    """User search text as a safe FTS5 query: words ANDed, "quoted phrases" kept, a trailing * = prefix.

    FTS5 syntax characters in user text (-, :, parentheses, quotes) would otherwise raise; each term is
    quoted so they are searched as text.
    """
    terms = []
    for phrase, word in _TERM_RE.findall(text or ""):
        if phrase.strip():
            terms.append('"' + phrase.strip().replace('"', '""') + '"')
        elif word:
            prefix = word.endswith("*")
            word = word.rstrip("*")
            if word and re.search(r"\w", word):
                terms.append('"' + word.replace('"', '""') + '"' + ("*" if prefix else ""))
    return " ".join(terms) if terms else None


def match_expr(f: ReviewFilter) -> str:
    """The FTS5 query for `f.q` over `review_cot_fts`: the user's terms in the CoT's question, text or
    critiques (never in the `kind` column), restricted to CoTs of the filter's kind."""
    terms = fts_query(f.q)
    if terms is None:
        raise FilterError(f"search '{f.q}' has no words to look for; type at least one word")
    kind = f.kind.replace('"', '""')
    return f'kind : "{kind}" AND {{question cot critiques}} : ({terms})'


def _search_only(f: ReviewFilter) -> bool:
    """True when `f` is a search and nothing else (besides kind and sort): the index alone answers it."""
    return bool(f.q.strip()) and f.replace(q="", kind="cot", sort="question") == ReviewFilter()


def where(f: ReviewFilter, example_id: int | None = None) -> tuple[str, str, list[Any]]:
    """(WITH-prefix, WHERE clause, params) selecting the CoTs `f` describes, over `_FROM`.

    With `example_id`, the search part only reads that question's documents (the clause does not itself
    restrict r.example_id; add that when you want one question's CoTs).
    """
    clauses, params = ["r.kind = ?"], [f.kind]
    if f.dataset:
        clauses.append("e.dataset_id = (SELECT id FROM datasets WHERE name = ?)")
        params.append(f.dataset)
    if f.split:
        clauses.append("e.split = ?")
        params.append(f.split)
    if f.teacher:
        clauses.append("r.author = ?")
        params.append(f.teacher)
    if f.correct:
        clauses.append({"yes": "r.correct = 1", "no": "r.correct = 0", "unknown": "r.correct IS NULL"}[f.correct])
    if f.verdict:
        clauses.append({
            "any_wrong": "r.v_wrong > 0",
            "any_uncertain": "r.v_uncertain > 0",
            "all_correct": "r.v_correct > 0 AND r.v_wrong = 0 AND r.v_uncertain = 0",
            "none": "r.v_correct + r.v_wrong + r.v_uncertain = 0",
        }[f.verdict])
    if f.verdict_vs_gold:
        clauses.append(_VERDICT_VS_GOLD)
    if f.cots_disagree:
        clauses.append("r.peers_disagree = 1")
    if f.edited:
        clauses.append("r.revision > 0" if f.edited == "yes" else "r.revision = 0")
    if f.status:
        clauses.append("r.status = ?")
        params.append(f.status)
    if f.q.strip():
        clauses.append(f"r.id IN (SELECT rowid & {_ID_MASK} FROM review_cot_fts WHERE review_cot_fts MATCH ?"
                       + (" AND rowid BETWEEN ? AND ?)" if example_id is not None else ")"))
        params.append(match_expr(f))
        if example_id is not None:  # one question's CoTs: a rowid range of the index
            params += [example_id << _SHIFT, (example_id << _SHIFT) | _ID_MASK]
    return "", " AND ".join(clauses), params


_VERDICT_VS_GOLD = "((r.correct = 0 AND r.v_correct > 0) OR (r.correct = 1 AND r.v_wrong > 0))"


def _from(f: ReviewFilter) -> str:
    """The FROM clause: examples are joined only when a filter needs them (a join costs on 100k rows)."""
    return _FROM if (f.dataset or f.split) else "FROM rationales r"


def _run(conn: sqlite3.Connection, sql: str, params: list[Any]) -> list[sqlite3.Row]:
    try:
        return conn.execute(sql, params).fetchall()
    except sqlite3.OperationalError as exc:
        if "fts5" in str(exc).lower():
            raise FilterError(f"the search could not be read ({exc}); remove special characters") from exc
        raise


def matching_ids(conn: sqlite3.Connection, f: ReviewFilter) -> list[int]:
    """Ids of every CoT the filter selects (for bulk actions; ids only, not rows)."""
    w, c, p = where(f)
    return [r[0] for r in _run(conn, f"{w}SELECT r.id {_from(f)} WHERE {c} ORDER BY r.id", p)]


def count(conn: sqlite3.Connection, f: ReviewFilter, cache: dict | None = None) -> dict[str, int]:
    """How many CoTs and questions the filter selects (memoised in `cache` until the data changes)."""
    def compute():
        if _search_only(f):  # straight from the index: one document per CoT, its question in the rowid
            row = _run(conn, f"SELECT COUNT(*), COUNT(DISTINCT rowid >> {_SHIFT}) FROM review_cot_fts"
                             " WHERE review_cot_fts MATCH ?", [match_expr(f)])[0]
        else:
            w, c, p = where(f)
            row = _run(conn, f"{w}SELECT COUNT(*), COUNT(DISTINCT r.example_id) {_from(f)} WHERE {c}", p)[0]
        return {"cots": row[0], "questions": row[1]}
    return _cached(conn, cache, ("count", f.replace(sort="question")), compute)


def _token(conn: sqlite3.Connection) -> tuple[int, int]:
    """Changes when anyone commits: data_version covers other connections, total_changes this one."""
    return conn.execute("PRAGMA data_version").fetchone()[0], conn.total_changes


def _cached(conn, cache, key, compute):
    if cache is None:
        return compute()
    token = _token(conn)
    if cache.get("_token") != token:
        cache.clear()
        cache["_token"] = token
    if key not in cache:
        if len(cache) > 64:
            cache.clear()
            cache["_token"] = token
        cache[key] = compute()
    return cache[key]


# The facet cube: CoT counts grouped by every choice filter's dimension. Filters on these dimensions are
# applied in Python over the (few hundred) groups, so changing one needs no new scan of the store.
_CUBE_SQL = (
    "SELECT e.split, r.author, r.status, r.correct, r.v_wrong > 0, r.v_uncertain > 0,"
    " (r.v_correct > 0 AND r.v_wrong = 0 AND r.v_uncertain = 0), (r.v_correct + r.v_wrong + r.v_uncertain = 0),"
    f" {_VERDICT_VS_GOLD}, r.peers_disagree, r.revision > 0, COUNT(*)"
    " {from_} WHERE {where} GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11")
_CORRECT = {"yes": 1, "no": 0, "unknown": None}
_VERDICT_COL = {"any_wrong": 4, "any_uncertain": 5, "all_correct": 6, "none": 7}


def _cube(conn: sqlite3.Connection, f: ReviewFilter, cache: dict | None) -> list[tuple]:
    base = ReviewFilter(dataset=f.dataset, q=f.q, kind=f.kind)  # only what the cube cannot group by
    def compute():
        w, c, p = where(base)
        return [tuple(r) for r in _run(conn, w + _CUBE_SQL.format(from_=_FROM, where=c), p)]
    return _cached(conn, cache, ("cube", base), compute)


def _passes(g: tuple, f: ReviewFilter) -> dict[str, bool]:
    """Whether a cube group passes each choice filter of `f` (True where the filter is unset)."""
    return {
        "split": f.split is None or g[0] == f.split,
        "teacher": f.teacher is None or g[1] == f.teacher,
        "status": f.status is None or g[2] == f.status,
        "correct": f.correct is None or g[3] == _CORRECT[f.correct],
        "verdict": f.verdict is None or bool(g[_VERDICT_COL[f.verdict]]),
        "verdict_vs_gold": not f.verdict_vs_gold or bool(g[8]),
        "cots_disagree": not f.cots_disagree or bool(g[9]),
        "edited": f.edited is None or bool(g[10]) == (f.edited == "yes"),
    }


def facet_counts(conn: sqlite3.Connection, f: ReviewFilter, cache: dict | None = None) -> dict[str, Any]:
    """Counts per filter value: for each filter, how many CoTs each of its options would select given
    all the *other* current filters (so every option shows what picking it gives).

    Returns cots and questions (under all filters), by_teacher, by_status, by_split,
    correct{yes,no,unknown}, verdict{any_wrong,any_uncertain,all_correct,none}, verdict_vs_gold,
    edited{yes,no}, cots_disagree. Pass a dict as `cache` to reuse work across calls until the data changes.
    """
    out: dict[str, Any] = {"cots": 0, "by_teacher": Counter(), "by_status": Counter(), "by_split": Counter(),
                           "correct": Counter(), "verdict": Counter(), "verdict_vs_gold": 0,
                           "edited": Counter(), "cots_disagree": 0}
    for g in _cube(conn, f, cache):
        ok = _passes(g, f)
        n = g[11]

        def others(name):
            return all(v for k, v in ok.items() if k != name)

        if all(ok.values()):
            out["cots"] += n
        if others("teacher"):
            out["by_teacher"][g[1]] += n
        if others("status"):
            out["by_status"][g[2]] += n
        if others("split"):
            out["by_split"][g[0]] += n
        if others("correct"):
            out["correct"][{1: "yes", 0: "no"}.get(g[3], "unknown")] += n
        if others("verdict"):
            for key, col in _VERDICT_COL.items():
                out["verdict"][key] += n if g[col] else 0
        if others("verdict_vs_gold") and g[8]:
            out["verdict_vs_gold"] += n
        if others("cots_disagree") and g[9]:
            out["cots_disagree"] += n
        if others("edited"):
            out["edited"]["yes" if g[10] else "no"] += n
    out["questions"] = count(conn, f, cache)["questions"] if out["cots"] else 0
    for key in ("by_teacher", "by_status", "by_split", "correct", "verdict", "edited"):
        out[key] = dict(out[key])
    return out


def question_ids(conn: sqlite3.Connection, f: ReviewFilter, offset: int = 0, limit: int = 50) -> list[int]:
    """Example ids of matching questions in the filter's sort order, one page."""
    if f.q.strip() and f.sort == "question":
        # The index's rowids are in question order: walk them and stop once the page is full.
        if _search_only(f):
            sql = (f"SELECT DISTINCT rowid >> {_SHIFT} FROM review_cot_fts WHERE review_cot_fts MATCH ?"
                   " ORDER BY rowid LIMIT ? OFFSET ?")
            p = [match_expr(f)]
        else:
            w, c, p = where(f.replace(q=""))
            join = " JOIN examples e ON e.id = r.example_id" if (f.dataset or f.split) else ""
            sql = (f"{w}SELECT DISTINCT r.example_id {_FTS_FROM}{join} WHERE review_cot_fts MATCH ? AND {c}"
                   " ORDER BY review_cot_fts.rowid LIMIT ? OFFSET ?")
            p = [match_expr(f)] + p
        return [r[0] for r in _run(conn, sql, p + [int(limit), int(offset)])]
    w, c, p = where(f)
    sql = (f"{w}SELECT r.example_id {_from(f)} WHERE {c} GROUP BY r.example_id"
           f" ORDER BY {_QUESTION_ORDER[f.sort]} LIMIT ? OFFSET ?")
    return [r[0] for r in _run(conn, sql, p + [int(limit), int(offset)])]


def question_at(conn: sqlite3.Connection, f: ReviewFilter, index: int) -> int | None:
    """The example id of the `index`-th matching question (0-based), or None past the end."""
    ids = question_ids(conn, f, offset=max(0, index), limit=1)
    return ids[0] if ids else None


def cot_rows(conn: sqlite3.Connection, f: ReviewFilter, offset: int = 0, limit: int = 50) -> list[dict]:
    """One page of matching CoTs for the compact table view (question and text shortened in SQL)."""
    cols = ("SELECT r.id, r.example_id, e.split, substr(e.question, 1, 120) AS question, e.answer AS gold,"
            " r.author AS teacher, r.parsed_answer, r.correct, r.v_correct, r.v_wrong, r.v_uncertain,"
            " r.status, r.status_reason, r.revision, substr(r.text, 1, 160) AS cot, r.updated_at")
    if f.q.strip() and f.sort == "question":  # rowid order = (question, CoT id): walk the index, stop at the page
        w, c, p = where(f.replace(q=""))
        sql = (f"{w}{cols} {_FTS_FROM} JOIN examples e ON e.id = r.example_id"
               f" WHERE review_cot_fts MATCH ? AND {c} ORDER BY review_cot_fts.rowid LIMIT ? OFFSET ?")
        p = [match_expr(f)] + p
    else:
        w, c, p = where(f)
        sql = f"{w}{cols} {_FROM} WHERE {c} ORDER BY {_COT_ORDER[f.sort]} LIMIT ? OFFSET ?"
    return [dict(r) for r in _run(conn, sql, p + [int(limit), int(offset)])]


def question_detail(conn: sqlite3.Connection, example_id: int, f: ReviewFilter | None = None) -> dict:
    """A question with all its CoTs (of the filter's kind), their self-evaluations and peer reviews.

    Each CoT carries `matches` (whether the filter selects it) so the page can dim the others.
    """
    ex = conn.execute("SELECT e.*, d.name AS dataset FROM examples e JOIN datasets d ON d.id = e.dataset_id"
                      " WHERE e.id = ?", (example_id,)).fetchone()
    if ex is None:
        raise NotFoundError(f"question {example_id} does not exist (it may have been deleted); reload the page")
    f = f or ReviewFilter()
    cots = [dict(r) for r in conn.execute(
        "SELECT * FROM rationales WHERE example_id = ? AND kind = ? ORDER BY author, sample_index, id",
        (example_id, f.kind))]
    ids = [c["id"] for c in cots]
    evals: dict[int, list[dict]] = {i: [] for i in ids}
    reviews: dict[int, list[dict]] = {i: [] for i in ids}
    if ids:
        marks = ",".join("?" * len(ids))
        for s in conn.execute(f"SELECT * FROM self_evals WHERE rationale_id IN ({marks}) ORDER BY id", ids):
            evals[s["rationale_id"]].append(dict(s))
        for v in conn.execute(f"SELECT * FROM reviews WHERE rationale_id IN ({marks}) ORDER BY id", ids):
            reviews[v["rationale_id"]].append(dict(v))
        w, c, p = where(f, example_id=example_id)
        matched = {r[0] for r in _run(conn, f"{w}SELECT r.id {_FROM} WHERE {c} AND r.example_id = ?",
                                      p + [example_id])}
    else:
        matched = set()
    for cot in cots:
        cot["self_evals"] = evals[cot["id"]]
        cot["reviews"] = reviews[cot["id"]]
        cot["matches"] = cot["id"] in matched
    example = dict(ex)
    example["choices"] = store.loads(example["choices"])
    return {"example": example, "cots": cots, "agreement": agreement(cots)}


def teachers(conn: sqlite3.Connection, kind: str = "cot") -> list[str]:
    return [r[0] for r in conn.execute(
        "SELECT DISTINCT author FROM rationales WHERE kind = ? ORDER BY author", (kind,))]


VERDICTS = ("correct", "wrong", "uncertain", "unparsed")


def teacher_quality(conn: sqlite3.Connection, dataset: str | None = None, kind: str = "cot") -> list[dict]:
    """Per teacher: accuracy of its CoTs vs gold, and its self-evaluation verdicts vs the truth.

    `confusion[verdict]` = {"right": n, "wrong": n} counts the teacher's verdicts (as evaluator) on CoTs
    that are right / wrong vs gold; `verdict_accuracy` is the share of correct/wrong verdicts that match.
    """
    ds_clause, ds_params = "", []
    if dataset:
        ds_clause = " AND r.example_id IN (SELECT id FROM examples WHERE dataset_id =" \
                    " (SELECT id FROM datasets WHERE name = ?))"
        ds_params = [dataset]
    out: dict[str, dict] = {}
    for row in conn.execute(
            "SELECT r.author, COUNT(*), SUM(r.correct = 1), SUM(r.correct IS NOT NULL),"
            " SUM(r.parse_status = 'parse_error')"
            f" FROM rationales r WHERE r.kind = ?{ds_clause} GROUP BY r.author", [kind] + ds_params):
        out[row[0]] = {"teacher": row[0], "cots": row[1], "graded": row[3] or 0,
                       "accuracy": (row[2] / row[3]) if row[3] else None, "parse_errors": row[4] or 0,
                       "self_evals": 0, "confusion": {v: {"right": 0, "wrong": 0} for v in VERDICTS},
                       "verdict_accuracy": None}
    for row in conn.execute(
            "SELECT s.evaluator, COALESCE(s.verdict, 'unparsed'), r.correct, COUNT(*)"
            f" FROM self_evals s JOIN rationales r ON r.id = s.rationale_id WHERE r.kind = ? AND NOT s.stale{ds_clause}"
            " GROUP BY 1, 2, 3", [kind] + ds_params):
        t = out.setdefault(row[0], {"teacher": row[0], "cots": 0, "graded": 0, "accuracy": None,
                                    "parse_errors": 0, "self_evals": 0, "verdict_accuracy": None,
                                    "confusion": {v: {"right": 0, "wrong": 0} for v in VERDICTS}})
        t["self_evals"] += row[3]
        if row[2] is not None:
            t["confusion"][row[1]]["right" if row[2] else "wrong"] += row[3]
    for t in out.values():
        c = t["confusion"]
        decided = c["correct"]["right"] + c["correct"]["wrong"] + c["wrong"]["right"] + c["wrong"]["wrong"]
        hits = c["correct"]["right"] + c["wrong"]["wrong"]
        t["verdict_accuracy"] = hits / decided if decided else None
        t["ece"] = t["auroc"] = None
    for ev, cal in _calibration(conn, ds_clause, ds_params, kind).items():
        out[ev].update(cal)
    return sorted(out.values(), key=lambda t: t["teacher"])


# P(correct) of a self-evaluation, as mirror_core.evaluation.runner.teacher_calibration reads it: the stated
# confidence for "correct", 1 - it for "wrong", 0.5 for "uncertain"; 1 / 0 without a stated confidence.
_P_CORRECT = ("CASE WHEN s.verdict = 'uncertain' THEN 0.5"
              " WHEN s.verdict = 'correct' THEN COALESCE(MIN(1.0, MAX(0.0, s.confidence)), 1.0)"
              " ELSE 1.0 - COALESCE(MIN(1.0, MAX(0.0, s.confidence)), 1.0) END")


def _calibration(conn, ds_clause: str, ds_params: list, kind: str) -> dict[str, dict]:
    """ECE (10 equal-width bins) and AUROC of each evaluator's P(correct) against the CoT's truth vs gold,
    from (evaluator, p, correct) counts aggregated in SQL (fresh, parsed verdicts on graded CoTs)."""
    import numpy as np

    from mirror_core.evaluation import metrics

    groups: dict[str, tuple[list, list, list]] = {}
    for ev, p, ok, n in conn.execute(
            f"SELECT s.evaluator, {_P_CORRECT}, r.correct, COUNT(*) FROM self_evals s"
            f" JOIN rationales r ON r.id = s.rationale_id WHERE r.kind = ? AND NOT s.stale"
            f" AND s.verdict IS NOT NULL AND r.correct IS NOT NULL{ds_clause} GROUP BY 1, 2, 3",
            [kind] + ds_params):
        g = groups.setdefault(ev, ([], [], []))
        g[0].append(p), g[1].append(ok), g[2].append(n)
    out = {}
    for ev, (p, ok, n) in groups.items():
        conf, cor = np.repeat(np.array(p, float), n), np.repeat(np.array(ok, int), n)
        out[ev] = {"ece": metrics.ece(conf, cor), "auroc": metrics.auroc(conf, cor), "calibrated_n": int(sum(n))}
    return out
