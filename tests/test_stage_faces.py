"""Every stage has one public face (`Config`, `validate`, `submit`, `run`): the page and the CLI are equal
callers of `<stage>.submit`, so a bad config is refused by both with the same sentence and nothing is
queued; the CLI's flags are made from the Config's fields, and `config_from_dict` is one rule for all."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from mirror_core import cli, configs, jobs, store
from mirror_core.commands import add_config_flags, config_of_args
from mirror_core.errors import ConfigError, EvaluationError, LoopError, TrainingError
from mirror_core.evaluation import job as eval_job
from mirror_core.generation import job as gen_job
from mirror_core.loops import job as loop_job
from mirror_core.training import job as train_job
from mirror_core.training.config import TrainConfig

PAGES = Path(__file__).resolve().parent.parent / "pages"


def _page(name: str) -> AppTest:
    return AppTest.from_file(str(PAGES / name), default_timeout=90)


def _cli_error(capsys, argv: list[str]) -> str:
    capsys.readouterr()
    assert cli.main(argv) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: "), err
    return err.strip().removeprefix("error: ")


def _runs(conn) -> int:
    return conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0]


# ---------------------------------------------------------------- page and CLI: the same sentence

def test_train_page_and_cli_refuse_an_unknown_student_alike(conn, home, capsys, monkeypatch):
    from training_fixtures import make_snapshot

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    make_snapshot(conn, "snap", n_train=2, n_dev=1)
    at = _page("4_Train.py").run()
    at.text_input(key="student").set_value("no-such/model-xyz")
    at.button(key="launch").click().run()
    assert not at.exception
    page = [e.value for e in at.error]
    said = _cli_error(capsys, ["train", "--snapshot", "snap", "--student", "no-such/model-xyz"])
    assert page == [said] and "not in the local Hugging Face cache" in said
    assert _runs(conn) == 0


def _train_run(conn, dataset_id: int) -> int:
    """A succeeded train run on a snapshot of `dataset_id` (no checkpoint: nothing here evaluates it)."""
    sid = conn.execute("INSERT INTO snapshots (name, policy, dataset_id, hash, size, created_at)"
                       " VALUES ('s', 'all', ?, 'h', 0, ?)", (dataset_id, store.now())).lastrowid
    rid = jobs.submit(conn, "train", TrainConfig(student="tiny").to_dict(), snapshot_id=sid, start=False)
    conn.execute("UPDATE runs SET status = 'succeeded' WHERE id = ?", (rid,))
    return rid


def test_eval_page_and_cli_refuse_a_split_with_no_examples_alike(conn, home, capsys):
    from eval_helpers import make_dataset

    train = _train_run(conn, make_dataset(conn, n_test=3))  # test and train questions, no dev
    before = _runs(conn)
    at = _page("5_Evaluate.py").run()
    at.selectbox(key="ev_split").set_value("dev")
    at.button(key="ev_go").click().run()
    assert not at.exception
    page = [e.value for e in at.error]
    said = _cli_error(capsys, ["eval", "--run", str(train), "--split", "dev", "--background"])
    assert page == [said] == ["Dataset 'toy' has no 'dev' examples to evaluate."]
    assert _runs(conn) == before  # the Evaluate page queued this before it validated


def test_generate_page_and_cli_refuse_a_missing_key_alike(conn, home, capsys, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    conn.execute("INSERT INTO datasets (name, source, task_type, content_hash, created_at)"
                 " VALUES ('toy', 'test', 'numeric', 'h', ?)", (store.now(),))
    conn.execute("INSERT INTO examples (dataset_id, ext_id, split, question, answer, task_type)"
                 " VALUES (1, 'q0', 'train', 'What is 1 + 2?', '3', 'numeric')")
    at = _page("2_Generate.py").run()
    at.multiselect(key="g_teachers").set_value([])
    at.text_input(key="g_extra").set_value("openai:gpt-4o-mini").run()
    at.button(key="g_launch").click().run()
    assert not at.exception
    page = [e.value for e in at.error]
    said = _cli_error(capsys, ["generate", "--dataset", "toy", "--teacher", "openai:gpt-4o-mini"])
    assert page == [said] and "OPENAI_API_KEY" in said
    assert _runs(conn) == 0


def test_loop_page_and_cli_refuse_an_unknown_student_alike(conn, home, capsys, monkeypatch):
    from loops_helpers import make_dataset

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    make_dataset(conn)
    at = _page("6_Loops.py").run()
    at.text_input(key="elad_student").set_value("no-such/model-xyz")
    at.button(key="elad_go").click().run()
    assert not at.exception
    page = [e.value for e in at.error]
    said = _cli_error(capsys, ["loop", "elad", "--dataset", "arith", "--teacher", "fake",
                               "--student", "no-such/model-xyz"])
    assert page == [said] and "no-such/model-xyz" in said
    assert _runs(conn) == 0


# ---------------------------------------------------------------- submit never queues an invalid job

def test_each_submit_validates_before_queuing(conn, home, monkeypatch):
    from training_fixtures import make_snapshot

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    make_snapshot(conn, "snap", n_train=2, n_dev=1)
    with pytest.raises(TrainingError, match="Unknown training setting\\(s\\) learning_rate"):
        train_job.submit(conn, {"student": "tiny", "learning_rate": 1.0}, snapshot="snap", start=False)
    with pytest.raises(TrainingError, match="not in the local Hugging Face cache"):
        train_job.submit(conn, TrainConfig(student="no-such/model-xyz"), snapshot="snap", start=False)
    with pytest.raises(Exception, match="snapshot 'nope' does not exist"):
        train_job.submit(conn, {"student": "tiny"}, snapshot="nope", start=False)
    with pytest.raises(Exception, match="Run 999 does not exist"):
        eval_job.submit(conn, {"train_run": 999}, start=False)
    with pytest.raises(EvaluationError, match="The eval setting samples must be an integer, got 'many'"):
        eval_job.submit(conn, {"train_run": 1, "samples": "many"}, start=False)
    with pytest.raises(ConfigError, match="Unknown generate setting\\(s\\) n_cot;"):
        gen_job.submit(conn, {"dataset": "snap", "teachers": ["fake"], "n_cot": 2}, start=False)
    with pytest.raises(LoopError, match="Unknown ELAD setting\\(s\\) pol;"):
        loop_job.submit(conn, {"loop": "elad", "dataset": "snap", "teachers": ["fake"], "student": "tiny",
                               "pol": 3}, start=False)
    assert _runs(conn) == 0
    # and a valid one is queued, with the config the job will read back
    rid = train_job.submit(conn, {"student": "tiny", "max_steps": 2}, snapshot="snap", start=False)
    assert TrainConfig.from_dict(store.loads(jobs.get(conn, rid)["config"])).max_steps == 2


def test_the_runner_table_names_every_stage_face():
    import importlib

    for kind, module in (("generate", gen_job), ("train", train_job), ("eval", eval_job), ("loop", loop_job)):
        mod, fn = jobs.HANDLERS[kind].split(":")
        assert importlib.import_module(mod) is module and fn == "run"
        for name in ("validate", "submit", "run"):
            assert callable(getattr(module, name)), (kind, name)


# ---------------------------------------------------------------- the CLI's flags come from the Config

@dataclasses.dataclass
class _Demo:
    size: int = configs.option("how many widgets", 3, lo=1)
    label: str | None = configs.option("what to call them", None)
    fast: bool = configs.option("hurry", False)


def test_a_field_added_to_a_config_is_a_flag_with_its_help(capsys):
    p = argparse.ArgumentParser(prog="demo")
    add_config_flags(p, _Demo)
    text = p.format_help()
    assert "--size N" in text and "how many widgets (default 3)" in text
    assert "--label LABEL" in text and "--fast, --no-fast" in text
    assert config_of_args(p.parse_args(["--size", "5", "--fast"]), _Demo) == {"size": 5, "fast": True}
    assert config_of_args(p.parse_args([]), _Demo) == {}  # left out: the Config's default applies
    with pytest.raises(SystemExit):
        p.parse_args(["--size", "0"])
    assert "argument --size: must be at least 1, got 0" in capsys.readouterr().err


@pytest.mark.parametrize("command,cls,renamed", [("train", TrainConfig, {}),
                                                 ("eval", eval_job.Config, {"train_run": "--run"})])
def test_train_and_eval_help_list_every_config_field(capsys, monkeypatch, command, cls, renamed):
    monkeypatch.setenv("COLUMNS", "2000")  # one line per flag: argparse would wrap "step-by-step" at a hyphen
    with pytest.raises(SystemExit):
        cli.main([command, "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for f in dataclasses.fields(cls):
        assert renamed.get(f.name, "--" + f.name.replace("_", "-")) in text, f.name
        assert " ".join(f.metadata["help"].split()) in text, f.name


# ---------------------------------------------------------------- one config_from_dict

@pytest.mark.parametrize("d,sentence", [
    ({"train_run": 1, "splt": "dev"}, "Unknown eval setting(s) splt; known: batch_size, bf16, chunk,"),
    ({"split": "dev"}, "The eval config needs train_run (id of the finished train run whose student is evaluated)."),
    ({"train_run": "7"}, "The eval setting train_run must be an integer, got '7'."),
    ({"train_run": 7, "limit": 2.5}, "The eval setting limit must be an integer or none, got 2.5."),
    ({"train_run": 7, "bf16": "yes"}, "The eval setting bf16 must be true or false or none, got 'yes'."),
])
def test_config_from_dict_refuses_in_one_sentence(d, sentence):
    with pytest.raises(EvaluationError) as exc:
        eval_job.Config.from_dict(d)
    assert str(exc.value).startswith(sentence) and "\n" not in str(exc.value)


def test_loop_config_types_are_checked_like_every_other_stage():
    with pytest.raises(LoopError, match="The ELAD setting budget must be an integer, got 'ten'."):
        loop_job.config_class("elad").from_dict({"loop": "elad", "dataset": "d", "teachers": ["fake"],
                                                 "budget": "ten"})
