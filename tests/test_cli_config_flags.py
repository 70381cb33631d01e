"""`generate` and `loop elad|mapd|critic` take their flags from their Config (issue 12): every field has
help and is a flag in `--help`, so a field added to GenConfig or a loop Config cannot be forgotten by the
CLI; the flags scripts already use keep their names and meaning."""

from __future__ import annotations

import dataclasses

import pytest

from mirror_core import cli
from mirror_core.commands import generate as gen_cmd
from mirror_core.commands import loop as loop_cmd
from mirror_core.generation.pipeline import GenConfig
from mirror_core.loops import job as loop_job

FACES = [(["generate"], GenConfig, gen_cmd.FLAG_NAMES)] + [
    (["loop", name], loop_job.config_class(name), {"teachers": "--teacher"}) for name in loop_job.LOOPS]


@pytest.mark.parametrize("argv,cls,renamed", FACES, ids=lambda x: " ".join(x) if isinstance(x, list) else "")
def test_every_config_field_has_help_and_is_a_flag(capsys, monkeypatch, argv, cls, renamed):
    monkeypatch.setenv("COLUMNS", "2000")  # one line per flag, so a help text is never cut at a hyphen
    with pytest.raises(SystemExit):
        cli.main([*argv, "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for f in dataclasses.fields(cls):
        help_text = " ".join(f.metadata.get("help", "").split())
        assert help_text, f"{cls.__name__}.{f.name} has no help"
        assert renamed.get(f.name, "--" + f.name.replace("_", "-")) + " " in text, f.name
        assert help_text in text, f.name


def _args(*argv):
    return cli.build_parser().parse_args(list(argv))


def test_generate_flags_set_the_config_fields_they_always_set():
    cfg = gen_cmd.build_config(None, _args(
        "generate", "--dataset", "toy", "--teacher", "fake:a", "--teacher", "fake:b", "--split", "train",
        "--limit", "5", "--dev-limit", "2", "--n-cots", "2", "--k-evals", "0", "--evaluator", "reference",
        "--temperature", "0.2", "--max-tokens", "100", "--eval-max-tokens", "50", "--seed", "3",
        "--base-url", "http://localhost:1/v1", "--budget", "1.5", "--timeout", "30", "--retry-failed",
        "--templates", "cot-numeric=2", "--max-retries", "1", "--requests-per-minute", "0"))
    assert cfg.teachers == ["fake:a", "fake:b"]
    assert (cfg.limit, cfg.dev_limit, cfg.n_cots, cfg.k_evals, cfg.evaluator) == (5, 2, 2, 0, "reference")
    assert (cfg.temperature, cfg.max_tokens, cfg.eval_max_tokens, cfg.seed) == (0.2, 100, 50, 3)
    assert (cfg.base_url, cfg.budget_usd, cfg.timeout_s, cfg.retry_failed) == ("http://localhost:1/v1", 1.5, 30.0, True)
    assert cfg.templates == {"cot-numeric": 2} and cfg.max_retries == 1 and cfg.requests_per_minute == 0


def test_generate_flags_left_out_take_the_config_defaults_and_local_length_caps():
    cfg = gen_cmd.build_config(None, _args("generate", "--dataset", "toy", "--teacher", "fake"))
    assert cfg.as_dict() == GenConfig(dataset="toy", teachers=["fake"]).as_dict()
    local = gen_cmd.build_config(None, _args("generate", "--dataset", "toy", "--teacher", "local"))
    assert (local.max_tokens, local.eval_max_tokens) == (256, 160)
    mixed = gen_cmd.build_config(None, _args("generate", "--dataset", "toy", "--teacher", "local",
                                             "--teacher", "fake", "--max-tokens", "64"))
    assert (mixed.max_tokens, mixed.eval_max_tokens) == (64, 384)


@pytest.mark.parametrize("argv,expect", [
    (["generate", "--dataset", "toy"], "the following arguments are required: --teacher"),
    (["generate", "--dataset", "toy", "--teacher", "fake", "--templates", "cot=x"], "argument --templates:"),
    (["loop", "critic", "--dataset", "d", "--teacher", "fake", "--beta", "0"],
     "argument --beta: must be more than 0, got 0"),
    (["loop", "mapd", "--dataset", "d", "--teacher", "a", "--alpha", "1.5"], "argument --alpha: must be within 0..1"),
    (["loop", "elad", "--dataset", "d"], "the following arguments are required: --teacher"),
    (["loop", "sideways", "--dataset", "d"], "invalid choice: 'sideways'"),
])
def test_bad_flags_are_refused_at_parse_time(capsys, argv, expect):
    with pytest.raises(SystemExit) as exc:
        cli.main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and expect in err, err


@pytest.fixture
def queued(home, monkeypatch):
    """The config `loop` hands to the loop stage's submit (nothing is queued)."""
    seen = []
    monkeypatch.setattr(loop_cmd.loop_job, "submit", lambda conn, cfg, device="cpu": seen.append((cfg, device)) or 7)
    return seen


def test_loop_flags_and_set_make_the_config(queued, capsys):
    assert cli.main(["loop", "elad", "--dataset", "arith", "--teacher", "fake:a", "--teacher", "fake:b",
                     "--pool", "4", "--no-control", "--weight", "0.25", "--set", "samples=5", "--set", "pool=6",
                     "--device", "cuda:0"]) == 0
    cfg, device = queued[0]
    # --set wins over a flag (scripts that used it keep their meaning); budget and rounds as the page has them.
    assert cfg == {"loop": "elad", "dataset": "arith", "teachers": ["fake:a", "fake:b"], "budget": 20, "rounds": 2,
                   "pool": 6, "control": False, "weight": 0.25, "samples": 5}
    assert device == "cuda:0" and "run 7: loop elad queued" in capsys.readouterr().out


def test_loop_critic_band_and_mapd_defaults(queued):
    assert cli.main(["loop", "critic", "--dataset", "arith", "--teacher", "fake", "--band", "0.7,1.3",
                     "--budget", "8", "--lr", "1e-4"]) == 0
    assert cli.main(["loop", "mapd", "--dataset", "arith", "--teacher", "fake:a", "--teacher", "fake:b",
                     "--student", "tiny"]) == 0
    critic, mapd = (cfg for cfg, _ in queued)
    assert critic["band"] == [0.7, 1.3] and critic["budget"] == 8 and critic["lr"] == 1e-4
    assert mapd == {"loop": "mapd", "dataset": "arith", "teachers": ["fake:a", "fake:b"], "student": "tiny",
                    "budget": 20, "rounds": 2}
    for cfg in (critic, mapd):  # what the CLI hands over is a config the loop reads
        loop_job.config_class(cfg["loop"]).from_dict(cfg)


@pytest.mark.parametrize("field, value", [("max_retries", -1), ("backoff_s", -0.5), ("max_in_flight", 0),
                                          ("requests_per_minute", -3), ("budget_usd", -1), ("timeout_s", 0)])
def test_genconfig_refuses_out_of_bounds_from_a_page_or_the_store_as_the_cli_does(field, value):
    from mirror_core.errors import ConfigError
    from mirror_core.generation.pipeline import GenConfig

    with pytest.raises(ConfigError) as err:
        GenConfig.from_dict({"dataset": "d", "teachers": ["fake"], field: value})
    assert field in str(err.value)
