import sqlite3

import pytest

from mirror_core import migrations, store
from mirror_core.errors import ConfigError


def test_connect_sets_wal_and_foreign_keys(conn):
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1


def test_upgrade_from_first_migration_to_newest(home):
    first = migrations.MIGRATIONS[0][0]
    db = store.connect(home, migrate=False)
    migrations.migrate(db, upto=first)
    assert migrations.applied(db) == [first]
    # Data written under the old schema must survive the upgrade.
    db.execute("INSERT INTO datasets (name, source, task_type, content_hash, created_at) VALUES ('d','x','numeric','h','t')")
    db.execute("INSERT INTO examples (dataset_id, ext_id, split, question, answer, task_type) VALUES (1,'a','train','q','1','numeric')")
    ran = migrations.migrate(db)
    assert ran == [name for name, _ in migrations.MIGRATIONS[1:]]
    assert migrations.applied(db) == [name for name, _ in migrations.MIGRATIONS]
    assert db.execute("SELECT question FROM examples").fetchone()[0] == "q"
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    for t in ("teacher_calls", "rationales", "rationale_revisions", "self_evals", "reviews", "preferences",
              "snapshots", "snapshot_items", "runs", "metrics", "predictions"):
        assert t in tables
    assert migrations.migrate(db) == []  # idempotent


def test_transaction_is_all_or_nothing(conn):
    with pytest.raises(RuntimeError):
        with store.transaction(conn):
            conn.execute("INSERT INTO datasets (name, source, task_type, content_hash, created_at) VALUES ('d','x','numeric','h','t')")
            raise RuntimeError("boom")
    assert conn.execute("SELECT COUNT(*) FROM datasets").fetchone()[0] == 0


def test_foreign_keys_enforced(conn):
    with pytest.raises(sqlite3.IntegrityError):
        conn.execute("INSERT INTO examples (dataset_id, ext_id, split, question, answer, task_type) VALUES (99,'a','train','q','1','numeric')")


def test_postgres_url_gives_clear_error(home, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgresql://u@localhost/db")
    with pytest.raises(ConfigError, match="PostgreSQL"):
        store.connect(home)
