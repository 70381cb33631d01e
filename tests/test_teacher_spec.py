"""TeacherSpec: the one parser of a teacher spec, its errors (one sentence each), and where specs enter."""

from __future__ import annotations

import re

import pytest

from mirror_core.errors import TeacherError
from mirror_core.generation.pipeline import GenConfig
from mirror_core.teachers.registry import TeacherSpec, make_teacher


@pytest.mark.parametrize("text, kind, model, raw", [
    ("fake", "fake", None, "fake"),
    ("  fake:a ", "fake", "a", "fake:a"),
    ("local", "local", None, "local"),
    ("local:HuggingFaceTB/SmolLM2-135M-Instruct", "local", "HuggingFaceTB/SmolLM2-135M-Instruct",
     "local:HuggingFaceTB/SmolLM2-135M-Instruct"),
    ("openai:gpt-4o-mini", "openai", "gpt-4o-mini", "openai:gpt-4o-mini"),
    ("anthropic:claude-x:1", "anthropic", "claude-x:1", "anthropic:claude-x:1"),  # only the first ':' splits
    ("palm", "palm", None, "palm"),
])
def test_parse(text, kind, model, raw):
    spec = TeacherSpec.parse(text)
    assert (spec.kind, spec.model, spec.raw, str(spec)) == (kind, model, raw, raw)
    assert TeacherSpec.parse(spec) is spec  # parsed once: an object passes through


@pytest.mark.parametrize("text, message", [
    ("bogus:zzz", "Unknown teacher 'bogus:zzz'; use palm"),
    ("run:3", "Unknown teacher 'run:3'; use palm"),
    ("openai", "Teacher 'openai' needs a model: e.g. openai:MODEL."),
    ("anthropic:", "Teacher 'anthropic:' needs a model: e.g. anthropic:MODEL."),
    ("replay", "Teacher 'replay' needs a path: e.g. replay:outputs.jsonl."),
    ("palm:540b", "Teacher 'palm:540b': the built-in PaLM teacher takes no model; use 'palm'."),
    ("   ", "A teacher spec must be a non-empty text, not '   '; use palm"),
    (None, "A teacher spec must be a non-empty text, not None; use palm"),
])
def test_errors_are_one_sentence(text, message):
    with pytest.raises(TeacherError) as exc:
        TeacherSpec.parse(text)
    said = str(exc.value)
    assert said.startswith(message)
    # one sentence: a single full stop, at the end (the dots inside 'e.g.' and file names aside)
    assert said.endswith(".") and len(re.findall(r"\.(\s|$)", said.replace("e.g.", "eg"))) == 1


def test_absolute_resolves_an_existing_relative_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "out.jsonl").write_text("")
    spec = TeacherSpec.parse("replay:out.jsonl").absolute()
    assert (spec.kind, spec.model, spec.raw) == ("replay", str(tmp_path / "out.jsonl"), f"replay:{tmp_path / 'out.jsonl'}")
    missing = TeacherSpec.parse("replay:nope.jsonl")
    assert missing.absolute() is missing  # left for the replay teacher to report as missing


def test_display_name():
    assert TeacherSpec.parse("palm").display_name == "PaLM 540B (distilling step-by-step release)"
    assert TeacherSpec.parse("fake:a").display_name == "fake:a"


def test_gen_config_parses_specs_once_and_stores_strings():
    cfg = GenConfig(dataset="toy", teachers=[TeacherSpec.parse("fake:a"), " fake:b "])
    assert cfg.teachers == ["fake:a", "fake:b"]
    assert [(s.kind, s.model) for s in cfg.specs] == [("fake", "a"), ("fake", "b")]
    assert cfg.as_dict()["teachers"] == ["fake:a", "fake:b"] and "specs" not in cfg.as_dict()
    assert GenConfig.from_dict(cfg.as_dict()).specs == cfg.specs
    with pytest.raises(TeacherError, match="Unknown teacher 'nope'"):
        GenConfig(dataset="toy", teachers=["fake", "nope"])


def test_make_teacher_takes_a_spec_or_its_string():
    assert make_teacher(TeacherSpec.parse("fake:a")).spec == make_teacher("fake:a").spec == "fake:a"
