"""Ordered schema migrations. Append new ones at the end; never edit one that has shipped.

The database records which have run in `_migrations`; `migrate` applies the rest in order, each in
its own transaction. tests/test_store.py::test_upgrade_from_first_migration_to_newest builds a database with
only the first and upgrades it.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime, timezone
from typing import Callable


def now() -> str:
    """UTC timestamp as ISO text, the one time format in the store (`store.now` is this function).

    It lives here, under the store, because the schema is where the format is fixed (every `*_at`
    column holds it, `_migrations.applied_at` included) and so `store` can import this module
    without this module importing `store` back.
    """
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


MIGRATIONS: list[tuple[str, Callable[[sqlite3.Connection], None]]] = []


def migration(fn: Callable[[sqlite3.Connection], None]):
    MIGRATIONS.append((fn.__name__, fn))
    return fn


@migration
def m001_datasets_examples(db: sqlite3.Connection) -> None:
    db.executescript("""
    CREATE TABLE datasets (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        source TEXT NOT NULL,
        task_type TEXT NOT NULL,
        content_hash TEXT NOT NULL,
        meta TEXT,
        created_at TEXT NOT NULL
    );
    CREATE TABLE examples (
        id INTEGER PRIMARY KEY,
        dataset_id INTEGER NOT NULL REFERENCES datasets(id) ON DELETE CASCADE,
        ext_id TEXT NOT NULL,
        split TEXT NOT NULL CHECK (split IN ('train', 'dev', 'test')),
        question TEXT NOT NULL,
        choices TEXT,
        answer TEXT NOT NULL,
        rationale TEXT,
        task_type TEXT NOT NULL,
        meta TEXT,
        UNIQUE (dataset_id, ext_id)
    );
    CREATE INDEX examples_dataset_split ON examples(dataset_id, split);
    """)


@migration
def m002_teachers_rationales_runs(db: sqlite3.Connection) -> None:
    db.executescript("""
    CREATE TABLE prompt_templates (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL,
        version INTEGER NOT NULL,
        kind TEXT NOT NULL,
        body TEXT NOT NULL,
        created_at TEXT NOT NULL,
        UNIQUE (name, version)
    );
    CREATE TABLE runs (
        id INTEGER PRIMARY KEY,
        kind TEXT NOT NULL,
        name TEXT,
        status TEXT NOT NULL CHECK (status IN ('queued','running','succeeded','failed','cancelled')),
        config TEXT NOT NULL,
        snapshot_id INTEGER REFERENCES snapshots(id),
        parent_run_id INTEGER REFERENCES runs(id),
        device TEXT NOT NULL DEFAULT 'cpu',
        queue_position INTEGER NOT NULL DEFAULT 0,
        pid INTEGER,
        pgid INTEGER,
        log_path TEXT,
        heartbeat_at TEXT,
        exit_code INTEGER,
        error TEXT,
        progress_done INTEGER NOT NULL DEFAULT 0,
        progress_total INTEGER NOT NULL DEFAULT 0,
        progress_note TEXT,
        cost_usd REAL NOT NULL DEFAULT 0,
        result TEXT,
        created_at TEXT NOT NULL,
        started_at TEXT,
        finished_at TEXT
    );
    CREATE INDEX runs_status ON runs(status);
    CREATE TABLE teacher_calls (
        id INTEGER PRIMARY KEY,
        request_hash TEXT NOT NULL UNIQUE,
        run_id INTEGER REFERENCES runs(id) ON DELETE SET NULL,
        provider TEXT NOT NULL,
        model TEXT NOT NULL,
        template_name TEXT,
        template_version INTEGER,
        purpose TEXT,
        prompt TEXT NOT NULL,
        params TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN
            ('pending','ok','error','refused','rate_limited','timeout','parse_error','truncated')),
        response TEXT,
        finish_reason TEXT,
        input_tokens INTEGER,
        output_tokens INTEGER,
        cost_usd REAL NOT NULL DEFAULT 0,
        latency_s REAL,
        attempts INTEGER NOT NULL DEFAULT 0,
        error TEXT,
        raw TEXT,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE INDEX teacher_calls_run ON teacher_calls(run_id);
    CREATE INDEX teacher_calls_status ON teacher_calls(status);
    CREATE TABLE rationales (
        id INTEGER PRIMARY KEY,
        example_id INTEGER NOT NULL REFERENCES examples(id) ON DELETE CASCADE,
        kind TEXT NOT NULL DEFAULT 'cot',          -- cot | feedback | revision | student
        author TEXT NOT NULL,                       -- teacher spec, 'human', 'gold' or 'run:N'
        call_id INTEGER REFERENCES teacher_calls(id),
        parent_id INTEGER REFERENCES rationales(id),-- e.g. the student text a revision corrects
        run_id INTEGER REFERENCES runs(id) ON DELETE SET NULL,
        sample_index INTEGER NOT NULL DEFAULT 0,
        text TEXT NOT NULL,
        parsed_answer TEXT,
        parse_status TEXT NOT NULL DEFAULT 'ok' CHECK (parse_status IN ('ok','parse_error')),
        correct INTEGER,
        status TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active','accepted','rejected','flagged')),
        status_reason TEXT,
        revision INTEGER NOT NULL DEFAULT 0,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE INDEX rationales_example ON rationales(example_id);
    CREATE UNIQUE INDEX rationales_call ON rationales(call_id) WHERE call_id IS NOT NULL;
    CREATE TABLE rationale_revisions (
        id INTEGER PRIMARY KEY,
        rationale_id INTEGER NOT NULL REFERENCES rationales(id) ON DELETE CASCADE,
        revision INTEGER NOT NULL,
        old_text TEXT NOT NULL,
        new_text TEXT NOT NULL,
        author TEXT NOT NULL,
        created_at TEXT NOT NULL,
        UNIQUE (rationale_id, revision)
    );
    CREATE TABLE self_evals (
        id INTEGER PRIMARY KEY,
        rationale_id INTEGER NOT NULL REFERENCES rationales(id) ON DELETE CASCADE,
        evaluator TEXT NOT NULL,
        call_id INTEGER REFERENCES teacher_calls(id),
        sample_index INTEGER NOT NULL DEFAULT 0,
        critique TEXT NOT NULL,
        verdict TEXT CHECK (verdict IN ('correct','wrong','uncertain')),
        confidence REAL,
        parse_status TEXT NOT NULL DEFAULT 'ok' CHECK (parse_status IN ('ok','parse_error')),
        created_at TEXT NOT NULL
    );
    CREATE INDEX self_evals_rationale ON self_evals(rationale_id);
    CREATE UNIQUE INDEX self_evals_call ON self_evals(call_id) WHERE call_id IS NOT NULL;
    CREATE TABLE reviews (
        id INTEGER PRIMARY KEY,
        rationale_id INTEGER NOT NULL REFERENCES rationales(id) ON DELETE CASCADE,
        reviewer TEXT NOT NULL,
        call_id INTEGER REFERENCES teacher_calls(id),
        score INTEGER CHECK (score BETWEEN 1 AND 5),
        text TEXT,
        parse_status TEXT NOT NULL DEFAULT 'ok',
        created_at TEXT NOT NULL
    );
    CREATE INDEX reviews_rationale ON reviews(rationale_id);
    CREATE TABLE preferences (
        id INTEGER PRIMARY KEY,
        example_id INTEGER NOT NULL REFERENCES examples(id) ON DELETE CASCADE,
        run_id INTEGER REFERENCES runs(id) ON DELETE SET NULL,
        judge TEXT NOT NULL,
        chosen TEXT NOT NULL,
        rejected TEXT NOT NULL,
        consistent INTEGER NOT NULL,
        detail TEXT,
        created_at TEXT NOT NULL
    );
    CREATE TABLE snapshots (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        policy TEXT NOT NULL,
        dataset_id INTEGER REFERENCES datasets(id),
        hash TEXT NOT NULL,
        size INTEGER NOT NULL,
        meta TEXT,
        created_at TEXT NOT NULL
    );
    CREATE TABLE snapshot_items (
        snapshot_id INTEGER NOT NULL REFERENCES snapshots(id) ON DELETE CASCADE,
        example_id INTEGER NOT NULL REFERENCES examples(id),
        rationale_id INTEGER REFERENCES rationales(id),
        revision INTEGER,
        split TEXT NOT NULL,
        question TEXT NOT NULL,
        answer TEXT NOT NULL,
        cot TEXT,
        self_evals TEXT,      -- frozen JSON list of {critique, verdict, confidence}
        PRIMARY KEY (snapshot_id, example_id, rationale_id)
    );
    CREATE TABLE metrics (
        run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
        step INTEGER NOT NULL,
        key TEXT NOT NULL,
        value REAL NOT NULL,
        created_at TEXT NOT NULL,
        PRIMARY KEY (run_id, step, key)
    );
    CREATE TABLE predictions (
        id INTEGER PRIMARY KEY,
        run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
        example_id INTEGER NOT NULL REFERENCES examples(id),
        sample_index INTEGER NOT NULL DEFAULT 0,
        output TEXT NOT NULL,
        answer TEXT,
        correct INTEGER,
        self_verdict TEXT,
        confidence REAL,
        meta TEXT,
        created_at TEXT NOT NULL,
        UNIQUE (run_id, example_id, sample_index)
    );
    CREATE TABLE price_table (
        provider TEXT NOT NULL,
        model TEXT NOT NULL,
        input_per_mtok REAL NOT NULL,
        output_per_mtok REAL NOT NULL,
        PRIMARY KEY (provider, model)
    );
    """)


def applied(db: sqlite3.Connection) -> list[str]:
    db.execute("CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)")
    return [r[0] for r in db.execute("SELECT name FROM _migrations ORDER BY rowid")]


def migrate(db: sqlite3.Connection, upto: str | None = None) -> list[str]:
    """Apply pending migrations in order (stopping after `upto` if given); returns those applied now."""
    done = set(applied(db))
    ran = []
    for name, fn in MIGRATIONS:
        if name not in done:
            # executescript commits implicitly, so each migration runs inside its own explicit BEGIN.
            db.execute("BEGIN IMMEDIATE")
            try:
                if name in {r[0] for r in db.execute("SELECT name FROM _migrations")}:
                    db.execute("ROLLBACK")  # another process applied it meanwhile
                    continue
                for stmt in _split(fn, db):
                    db.execute(stmt)
                db.execute("INSERT INTO _migrations (name, applied_at) VALUES (?, ?)", (name, now()))
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
            ran.append(name)
        if upto and name == upto:
            break
    return ran


class _Recorder:
    """Collects the statements a migration issues so they run inside one transaction we control."""

    def __init__(self, db: sqlite3.Connection):
        self.db = db
        self.statements: list[str] = []

    def executescript(self, script: str) -> None:
        buf = ""
        for line in script.splitlines(keepends=True):
            buf += line
            if sqlite3.complete_statement(buf):
                self.statements.append(buf.strip())
                buf = ""
        if buf.strip():
            self.statements.append(buf.strip())

    def execute(self, sql: str, params=()) -> None:
        if params:
            raise ValueError("migrations take literal SQL only")
        self.statements.append(sql)


def _split(fn, db):
    rec = _Recorder(db)
    fn(rec)
    return rec.statements


@migration
def m003_review_search_and_verdict_counts(db: sqlite3.Connection) -> None:
    """Review page support: FTS5 over questions, CoTs and critiques; per-CoT verdict counters;
    snapshot immutability.

    `review_fts` is contentless (the text lives in its own table) and encodes the source in the rowid:
    rowid = id * 4 + kind, kind 0 = examples.question, 1 = rationales.text, 2 = self_evals.critique.
    Triggers keep it in sync. The `v_*` counters on rationales count its self-evaluations by verdict so
    filters such as "a self-evaluation says correct on a wrong CoT" are a column test, not a join.
    """
    db.executescript("""
    CREATE VIRTUAL TABLE review_fts USING fts5(body, content='', tokenize='porter unicode61 remove_diacritics 2');
    INSERT INTO review_fts(rowid, body) SELECT id * 4, question FROM examples;
    INSERT INTO review_fts(rowid, body) SELECT id * 4 + 1, text FROM rationales;
    INSERT INTO review_fts(rowid, body) SELECT id * 4 + 2, critique FROM self_evals;

    CREATE TRIGGER review_fts_examples_ai AFTER INSERT ON examples BEGIN
        INSERT INTO review_fts(rowid, body) VALUES (NEW.id * 4, NEW.question);
    END;
    CREATE TRIGGER review_fts_examples_ad AFTER DELETE ON examples BEGIN
        INSERT INTO review_fts(review_fts, rowid, body) VALUES ('delete', OLD.id * 4, OLD.question);
    END;
    CREATE TRIGGER review_fts_examples_au AFTER UPDATE OF question ON examples BEGIN
        INSERT INTO review_fts(review_fts, rowid, body) VALUES ('delete', OLD.id * 4, OLD.question);
        INSERT INTO review_fts(rowid, body) VALUES (NEW.id * 4, NEW.question);
    END;

    CREATE TRIGGER review_fts_rationales_ai AFTER INSERT ON rationales BEGIN
        INSERT INTO review_fts(rowid, body) VALUES (NEW.id * 4 + 1, NEW.text);
    END;
    CREATE TRIGGER review_fts_rationales_ad AFTER DELETE ON rationales BEGIN
        INSERT INTO review_fts(review_fts, rowid, body) VALUES ('delete', OLD.id * 4 + 1, OLD.text);
    END;
    CREATE TRIGGER review_fts_rationales_au AFTER UPDATE OF text ON rationales BEGIN
        INSERT INTO review_fts(review_fts, rowid, body) VALUES ('delete', OLD.id * 4 + 1, OLD.text);
        INSERT INTO review_fts(rowid, body) VALUES (NEW.id * 4 + 1, NEW.text);
    END;

    ALTER TABLE rationales ADD COLUMN v_correct INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE rationales ADD COLUMN v_wrong INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE rationales ADD COLUMN v_uncertain INTEGER NOT NULL DEFAULT 0;
    UPDATE rationales SET
        v_correct = (SELECT COUNT(*) FROM self_evals s WHERE s.rationale_id = rationales.id AND s.verdict = 'correct'),
        v_wrong = (SELECT COUNT(*) FROM self_evals s WHERE s.rationale_id = rationales.id AND s.verdict = 'wrong'),
        v_uncertain = (SELECT COUNT(*) FROM self_evals s WHERE s.rationale_id = rationales.id AND s.verdict = 'uncertain');
    CREATE INDEX rationales_kind_author ON rationales(kind, author);

    CREATE TRIGGER self_evals_ai AFTER INSERT ON self_evals BEGIN
        INSERT INTO review_fts(rowid, body) VALUES (NEW.id * 4 + 2, NEW.critique);
        UPDATE rationales SET v_correct = v_correct + (NEW.verdict IS 'correct'),
                              v_wrong = v_wrong + (NEW.verdict IS 'wrong'),
                              v_uncertain = v_uncertain + (NEW.verdict IS 'uncertain')
        WHERE id = NEW.rationale_id;
    END;
    CREATE TRIGGER self_evals_ad AFTER DELETE ON self_evals BEGIN
        INSERT INTO review_fts(review_fts, rowid, body) VALUES ('delete', OLD.id * 4 + 2, OLD.critique);
        UPDATE rationales SET v_correct = v_correct - (OLD.verdict IS 'correct'),
                              v_wrong = v_wrong - (OLD.verdict IS 'wrong'),
                              v_uncertain = v_uncertain - (OLD.verdict IS 'uncertain')
        WHERE id = OLD.rationale_id;
    END;
    CREATE TRIGGER self_evals_au_text AFTER UPDATE OF critique ON self_evals BEGIN
        INSERT INTO review_fts(review_fts, rowid, body) VALUES ('delete', OLD.id * 4 + 2, OLD.critique);
        INSERT INTO review_fts(rowid, body) VALUES (NEW.id * 4 + 2, NEW.critique);
    END;
    CREATE TRIGGER self_evals_au_verdict AFTER UPDATE OF verdict, rationale_id ON self_evals BEGIN
        UPDATE rationales SET v_correct = v_correct - (OLD.verdict IS 'correct'),
                              v_wrong = v_wrong - (OLD.verdict IS 'wrong'),
                              v_uncertain = v_uncertain - (OLD.verdict IS 'uncertain')
        WHERE id = OLD.rationale_id;
        UPDATE rationales SET v_correct = v_correct + (NEW.verdict IS 'correct'),
                              v_wrong = v_wrong + (NEW.verdict IS 'wrong'),
                              v_uncertain = v_uncertain + (NEW.verdict IS 'uncertain')
        WHERE id = NEW.rationale_id;
    END;

    CREATE TRIGGER snapshot_items_immutable BEFORE UPDATE ON snapshot_items BEGIN
        SELECT RAISE(ABORT, 'snapshot items are frozen; create a new snapshot instead');
    END;
    CREATE TRIGGER snapshots_immutable BEFORE UPDATE OF name, policy, dataset_id, hash, size ON snapshots BEGIN
        SELECT RAISE(ABORT, 'snapshots are immutable; create a new snapshot under another name');
    END;
    """)


@migration
def m004_loop_rounds(db: sqlite3.Connection) -> None:
    # One row per step of a feedback loop's round: what the step decided (selected questions and their
    # scores, accepted/rejected rationales and why, preferences kept), so a resumed loop skips finished
    # steps and the Loops page can show every decision.
    db.executescript("""
    CREATE TABLE loop_rounds (
        run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
        round INTEGER NOT NULL,
        step TEXT NOT NULL,
        decision TEXT NOT NULL,
        calls_spent INTEGER NOT NULL DEFAULT 0,
        created_at TEXT NOT NULL,
        PRIMARY KEY (run_id, round, step)
    );
    """)


@migration
def m005_review_peer_disagreement(db: sqlite3.Connection) -> None:
    """`rationales.peers_disagree` = 1 when the CoTs (same kind) of its question reach different answers.

    Kept by triggers so the Review page's "CoTs disagree" filter and counts are a column test.
    """
    db.executescript("""
    ALTER TABLE rationales ADD COLUMN peers_disagree INTEGER NOT NULL DEFAULT 0;
    UPDATE rationales SET peers_disagree = (
        SELECT COUNT(DISTINCT x.parsed_answer) > 1 FROM rationales x
        WHERE x.example_id = rationales.example_id AND x.kind = rationales.kind);
    CREATE TRIGGER rationales_disagree_ai AFTER INSERT ON rationales BEGIN
        UPDATE rationales SET peers_disagree = (
            SELECT COUNT(DISTINCT x.parsed_answer) > 1 FROM rationales x
            WHERE x.example_id = NEW.example_id AND x.kind = NEW.kind)
        WHERE example_id = NEW.example_id AND kind = NEW.kind;
    END;
    CREATE TRIGGER rationales_disagree_au AFTER UPDATE OF parsed_answer, example_id, kind ON rationales BEGIN
        UPDATE rationales SET peers_disagree = (
            SELECT COUNT(DISTINCT x.parsed_answer) > 1 FROM rationales x
            WHERE x.example_id = OLD.example_id AND x.kind = OLD.kind)
        WHERE example_id = OLD.example_id AND kind = OLD.kind;
        UPDATE rationales SET peers_disagree = (
            SELECT COUNT(DISTINCT x.parsed_answer) > 1 FROM rationales x
            WHERE x.example_id = NEW.example_id AND x.kind = NEW.kind)
        WHERE example_id = NEW.example_id AND kind = NEW.kind;
    END;
    CREATE TRIGGER rationales_disagree_ad AFTER DELETE ON rationales BEGIN
        UPDATE rationales SET peers_disagree = (
            SELECT COUNT(DISTINCT x.parsed_answer) > 1 FROM rationales x
            WHERE x.example_id = OLD.example_id AND x.kind = OLD.kind)
        WHERE example_id = OLD.example_id AND kind = OLD.kind;
    END;
    """)


@migration
def m006_review_search_per_cot(db: sqlite3.Connection) -> None:
    """Full-text search indexed per CoT: `review_cot_fts` holds ONE document per rationale with columns
    kind, question (its example's), cot (its text) and critiques (its self-evaluations' critiques, one per
    line), under rowid = (example_id << 32) | rationale id.

    A search then reads CoT ids (and their questions) straight from the index, in question order: no
    lookup from a critique to its CoT, no union of three hit lists. It replaces m003's `review_fts`
    (dropped with its triggers; the verdict counters' triggers are recreated without the FTS part). The
    table stores its content, so triggers update a document by rowid without re-supplying old text.
    Examples are no longer indexed on insert: a question is indexed with each of its CoTs.
    """
    db.executescript("""
    CREATE VIRTUAL TABLE review_cot_fts USING fts5(kind, question, cot, critiques,
        tokenize='porter unicode61 remove_diacritics 2');
    INSERT INTO review_cot_fts(rowid, kind, question, cot, critiques)
        SELECT (r.example_id << 32) | r.id, r.kind, e.question, r.text,
               (SELECT group_concat(s.critique, char(10)) FROM self_evals s WHERE s.rationale_id = r.id)
        FROM rationales r JOIN examples e ON e.id = r.example_id ORDER BY 1;

    DROP TRIGGER review_fts_examples_ai;
    DROP TRIGGER review_fts_examples_ad;
    DROP TRIGGER review_fts_examples_au;
    DROP TRIGGER review_fts_rationales_ai;
    DROP TRIGGER review_fts_rationales_ad;
    DROP TRIGGER review_fts_rationales_au;
    DROP TRIGGER self_evals_ai;
    DROP TRIGGER self_evals_ad;
    DROP TRIGGER self_evals_au_text;
    DROP TABLE review_fts;

    CREATE TRIGGER review_cot_fts_rationales_ai AFTER INSERT ON rationales BEGIN
        INSERT INTO review_cot_fts(rowid, kind, question, cot, critiques) VALUES (
            (NEW.example_id << 32) | NEW.id, NEW.kind,
            (SELECT question FROM examples WHERE id = NEW.example_id), NEW.text,
            (SELECT group_concat(critique, char(10)) FROM self_evals WHERE rationale_id = NEW.id));
    END;
    CREATE TRIGGER review_cot_fts_rationales_ad AFTER DELETE ON rationales BEGIN
        DELETE FROM review_cot_fts WHERE rowid = (OLD.example_id << 32) | OLD.id;
    END;
    CREATE TRIGGER review_cot_fts_rationales_au AFTER UPDATE OF text, kind, example_id ON rationales BEGIN
        DELETE FROM review_cot_fts WHERE rowid = (OLD.example_id << 32) | OLD.id;
        INSERT INTO review_cot_fts(rowid, kind, question, cot, critiques) VALUES (
            (NEW.example_id << 32) | NEW.id, NEW.kind,
            (SELECT question FROM examples WHERE id = NEW.example_id), NEW.text,
            (SELECT group_concat(critique, char(10)) FROM self_evals WHERE rationale_id = NEW.id));
    END;
    CREATE TRIGGER review_cot_fts_examples_au AFTER UPDATE OF question ON examples BEGIN
        UPDATE review_cot_fts SET question = NEW.question
        WHERE rowid BETWEEN (NEW.id << 32) AND ((NEW.id << 32) | 4294967295);
    END;

    CREATE TRIGGER self_evals_ai AFTER INSERT ON self_evals BEGIN
        UPDATE rationales SET v_correct = v_correct + (NEW.verdict IS 'correct'),
                              v_wrong = v_wrong + (NEW.verdict IS 'wrong'),
                              v_uncertain = v_uncertain + (NEW.verdict IS 'uncertain')
        WHERE id = NEW.rationale_id;
        UPDATE review_cot_fts SET critiques =
            (SELECT group_concat(critique, char(10)) FROM self_evals WHERE rationale_id = NEW.rationale_id)
        WHERE rowid = (SELECT (example_id << 32) | id FROM rationales WHERE id = NEW.rationale_id);
    END;
    CREATE TRIGGER self_evals_ad AFTER DELETE ON self_evals BEGIN
        UPDATE rationales SET v_correct = v_correct - (OLD.verdict IS 'correct'),
                              v_wrong = v_wrong - (OLD.verdict IS 'wrong'),
                              v_uncertain = v_uncertain - (OLD.verdict IS 'uncertain')
        WHERE id = OLD.rationale_id;
        UPDATE review_cot_fts SET critiques =
            (SELECT group_concat(critique, char(10)) FROM self_evals WHERE rationale_id = OLD.rationale_id)
        WHERE rowid = (SELECT (example_id << 32) | id FROM rationales WHERE id = OLD.rationale_id);
    END;
    CREATE TRIGGER review_cot_fts_self_evals_au AFTER UPDATE OF critique, rationale_id ON self_evals BEGIN
        UPDATE review_cot_fts SET critiques =
            (SELECT group_concat(critique, char(10)) FROM self_evals WHERE rationale_id = OLD.rationale_id)
        WHERE rowid = (SELECT (example_id << 32) | id FROM rationales WHERE id = OLD.rationale_id);
        UPDATE review_cot_fts SET critiques =
            (SELECT group_concat(critique, char(10)) FROM self_evals WHERE rationale_id = NEW.rationale_id)
        WHERE rowid = (SELECT (example_id << 32) | id FROM rationales WHERE id = NEW.rationale_id)
          AND NEW.rationale_id IS NOT OLD.rationale_id;
    END;
    """)


@migration
def m007_self_evals_stale(db: sqlite3.Connection) -> None:
    """`self_evals.stale` = 1 when the CoT was edited after the evaluation was written (it judged other text).

    Stale evaluations stay visible (marked) but no longer count in the per-CoT verdict counters that the
    Review filters read; review.curation.edit_cot sets the flag. These triggers undo what the m006/m003
    counter triggers do for rows that are (or become) stale.
    """
    db.executescript("""
    ALTER TABLE self_evals ADD COLUMN stale INTEGER NOT NULL DEFAULT 0;

    CREATE TRIGGER self_evals_au_stale AFTER UPDATE OF stale ON self_evals
    WHEN (NEW.stale != 0) IS NOT (OLD.stale != 0) BEGIN
        UPDATE rationales SET
            v_correct = v_correct + (CASE WHEN NEW.stale THEN -1 ELSE 1 END) * (NEW.verdict IS 'correct'),
            v_wrong = v_wrong + (CASE WHEN NEW.stale THEN -1 ELSE 1 END) * (NEW.verdict IS 'wrong'),
            v_uncertain = v_uncertain + (CASE WHEN NEW.stale THEN -1 ELSE 1 END) * (NEW.verdict IS 'uncertain')
        WHERE id = NEW.rationale_id;
    END;
    CREATE TRIGGER self_evals_ai_stale AFTER INSERT ON self_evals WHEN NEW.stale BEGIN
        UPDATE rationales SET v_correct = v_correct - (NEW.verdict IS 'correct'),
                              v_wrong = v_wrong - (NEW.verdict IS 'wrong'),
                              v_uncertain = v_uncertain - (NEW.verdict IS 'uncertain')
        WHERE id = NEW.rationale_id;
    END;
    CREATE TRIGGER self_evals_ad_stale AFTER DELETE ON self_evals WHEN OLD.stale BEGIN
        UPDATE rationales SET v_correct = v_correct + (OLD.verdict IS 'correct'),
                              v_wrong = v_wrong + (OLD.verdict IS 'wrong'),
                              v_uncertain = v_uncertain + (OLD.verdict IS 'uncertain')
        WHERE id = OLD.rationale_id;
    END;
    CREATE TRIGGER self_evals_au_verdict_stale AFTER UPDATE OF verdict, rationale_id ON self_evals
    WHEN OLD.stale AND NEW.stale BEGIN
        UPDATE rationales SET v_correct = v_correct + (OLD.verdict IS 'correct'),
                              v_wrong = v_wrong + (OLD.verdict IS 'wrong'),
                              v_uncertain = v_uncertain + (OLD.verdict IS 'uncertain')
        WHERE id = OLD.rationale_id;
        UPDATE rationales SET v_correct = v_correct - (NEW.verdict IS 'correct'),
                              v_wrong = v_wrong - (NEW.verdict IS 'wrong'),
                              v_uncertain = v_uncertain - (NEW.verdict IS 'uncertain')
        WHERE id = NEW.rationale_id;
    END;
    """)


@migration
def m008_call_attempts_and_row_identity(db: sqlite3.Connection) -> None:
    """Every HTTP attempt of a teacher call, and rows keyed by what was asked rather than by the call.

    `call_attempts`: one row per attempt, written 'sent' BEFORE the request leaves (by the worker thread) and
    completed after ('answered' / 'failed'); an attempt whose process died in flight stays 'sent' until a
    later run marks it 'lost'. `billing` says whether the provider may have charged for it ('billed',
    'possible' for timeouts and lost attempts, 'none' for HTTP errors), so the ledger counts what may have
    been billed and a resumed run can say how many requests were possibly billed twice.

    Rationales and self-evaluations were unique per call, so two questions (or two datasets) that share
    a cached request got one row between them; now a call gives one row per example (CoTs) and per
    rationale (self-evaluations): the cache still avoids paying twice.
    """
    db.executescript("""
    CREATE TABLE call_attempts (
        id INTEGER PRIMARY KEY,
        call_id INTEGER NOT NULL REFERENCES teacher_calls(id) ON DELETE CASCADE,
        run_id INTEGER REFERENCES runs(id) ON DELETE SET NULL,
        attempt INTEGER NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('sent', 'answered', 'failed', 'lost')),
        billing TEXT NOT NULL DEFAULT 'possible' CHECK (billing IN ('billed', 'possible', 'none')),
        status TEXT,
        input_tokens INTEGER,
        output_tokens INTEGER,
        cost_usd REAL,
        est_cost_usd REAL NOT NULL DEFAULT 0,
        latency_s REAL,
        error TEXT,
        sent_at TEXT NOT NULL,
        finished_at TEXT
    );
    CREATE INDEX call_attempts_call ON call_attempts(call_id);
    CREATE INDEX call_attempts_run ON call_attempts(run_id);

    DROP INDEX rationales_call;
    CREATE UNIQUE INDEX rationales_example_call ON rationales(example_id, call_id) WHERE call_id IS NOT NULL;
    CREATE INDEX rationales_call ON rationales(call_id);
    DROP INDEX self_evals_call;
    CREATE UNIQUE INDEX self_evals_rationale_call ON self_evals(rationale_id, call_id) WHERE call_id IS NOT NULL;
    CREATE INDEX self_evals_call ON self_evals(call_id);
    """)


@migration
def m009_runs_elapsed(db: sqlite3.Connection) -> None:
    """`runs.elapsed_s`: the seconds the run's worker actually ran, summed over its attempts.

    `finished_at - started_at` spans the whole life of a run, so a run stopped in one session and resumed
    the next counted the hours in between as training time. NULL for runs from before (their stamps are
    all there is) and for an attempt whose process was killed before it could record its time."""
    db.execute("ALTER TABLE runs ADD COLUMN elapsed_s REAL")


@migration
def m010_snapshot_costs(db: sqlite3.Connection) -> None:
    """`snapshot_costs`: the US$ of the teacher calls behind a snapshot's CoTs and their self-evaluations,
    summed once, when the snapshot is frozen (snapshots.create_snapshot).

    Evaluate's runs table shows it on every page load, and the sum scans every item and self-evaluation of
    the snapshot (≈ 90 ms for 70k items and 210k self-evaluations). Snapshots refuse updates (m003), so the
    figure lives beside them. Snapshots frozen before this migration are summed here, as of now."""
    db.executescript("""
    CREATE TABLE snapshot_costs (
        snapshot_id INTEGER PRIMARY KEY REFERENCES snapshots(id) ON DELETE CASCADE,
        teacher_cost_usd REAL NOT NULL
    );
    INSERT INTO snapshot_costs (snapshot_id, teacher_cost_usd)
    SELECT snap.id, (SELECT COALESCE(SUM(cost_usd), 0) FROM teacher_calls WHERE id IN (
        SELECT r.call_id FROM rationales r JOIN snapshot_items s ON s.rationale_id = r.id WHERE s.snapshot_id = snap.id
        UNION SELECT se.call_id FROM self_evals se JOIN snapshot_items s ON s.rationale_id = se.rationale_id
        WHERE s.snapshot_id = snap.id))
    FROM snapshots snap;
    """)
