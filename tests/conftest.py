"""Shared fixtures: every test gets its own project home (a real SQLite file in a temp dir)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    """A fresh MIRROR_HOME for this test; DATABASE_URL cleared so the SQLite default is used."""
    h = tmp_path / "home"
    h.mkdir()
    monkeypatch.setenv("MIRROR_HOME", str(h))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    return h


@pytest.fixture
def conn(home):
    from mirror_core import store

    c = store.connect(home)
    yield c
    c.close()
