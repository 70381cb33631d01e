"""`generate`: start a generation job (N CoTs x K self-evaluations per question per teacher);
`prompts list|show|edit`: the versioned prompt templates; `prices list|set`: the price table.

API keys come from the environment (ANTHROPIC_API_KEY, OPENAI_API_KEY) or Streamlit secrets, never from a
flag: a key on a command line would show in `ps` and shell history.
"""

from __future__ import annotations

import json
import sys

from mirror_core import prompts, store
from mirror_core.commands import add_config_flags, config_of_args, print_wait
from mirror_core.errors import ConfigError
from mirror_core.generation import job as gen_job
from mirror_core.generation import pipeline, pricing
from mirror_core.teachers.registry import SPEC_HELP, TeacherSpec


# GenConfig field -> its flag, where the flag is not the field's name (`--n-cots` for n_cots needs none).
FLAG_NAMES = {"teachers": "--teacher", "budget_usd": "--budget", "timeout_s": "--timeout"}


def register(sub) -> None:
    p = sub.add_parser("generate", help="teacher CoTs and self-evaluations for a dataset split (a background job)",
                       description="Queue a generation job. Every generation setting is a flag below, made from "
                                   "GenConfig's fields; API keys come from the environment, never a flag.")
    # The flag names scripts already use (--teacher, --budget, --timeout) are kept for the fields they set.
    add_config_flags(p, pipeline.GenConfig, names=FLAG_NAMES, repeat=("teachers",),
                     metavars={"dataset": "NAME", "teachers": "SPEC", "budget_usd": "USD", "timeout_s": "S",
                               "base_url": "URL", "templates": "NAME=V,.."},
                     notes={"teachers": f"repeatable: {SPEC_HELP}",
                                   "max_tokens": "default 512; 256 with only local teachers",
                                   "eval_max_tokens": "default 384; 160 with only local teachers"})
    p.add_argument("--device", default="cpu", help="device for a local teacher: cpu or cuda:N (default cpu)")
    p.add_argument("--name", help="a name for the run")
    p.add_argument("--estimate", action="store_true", help="print the request count and cost estimate only")
    p.add_argument("--json", action="store_true", help="with --estimate: print JSON")
    p.add_argument("--wait", action="store_true", help="stay until the job ends; non-zero exit if it failed")
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser("prompts", help="list, show or edit the versioned prompt templates")
    ps = p.add_subparsers(dest="prompts_command", metavar="ACTION", required=True)
    q = ps.add_parser("list", help="each template's newest version")
    q.set_defaults(func=cmd_prompts_list)
    q = ps.add_parser("show", help="print a template")
    q.add_argument("name")
    q.add_argument("--version", type=int)
    q.set_defaults(func=cmd_prompts_show)
    q = ps.add_parser("edit", help="save a new version from a file (or - for stdin)")
    q.add_argument("name")
    q.add_argument("file")
    q.add_argument("--kind", choices=("cot", "self_eval"), help="needed for a new template name")
    q.set_defaults(func=cmd_prompts_edit)

    p = sub.add_parser("prices", help="the price table (USD per million tokens)")
    ps = p.add_subparsers(dest="prices_command", metavar="ACTION", required=True)
    q = ps.add_parser("list")
    q.set_defaults(func=cmd_prices_list)
    q = ps.add_parser("set")
    q.add_argument("provider")
    q.add_argument("model")
    q.add_argument("input_per_mtok", type=float)
    q.add_argument("output_per_mtok", type=float)
    q.set_defaults(func=cmd_prices_set)


def default_max_tokens(specs: list[TeacherSpec]) -> tuple[int, int]:
    """(CoT, self-evaluation) length caps: a small local model on a CPU gets shorter ones."""
    if specs and all(s.kind == "local" for s in specs):
        return 256, 160
    return 512, 384


def build_config(conn, args) -> pipeline.GenConfig:
    """The GenConfig of the flags given; a flag left out takes GenConfig's default, except the length caps,
    which are shorter when every teacher is local (default_max_tokens), as on the Generate page."""
    given = config_of_args(args, pipeline.GenConfig)
    # Each --teacher is parsed here, once (a bad one is one sentence before anything else happens);
    # GenConfig takes the parsed specs as they are.
    specs = [TeacherSpec.parse(s) for s in given.get("teachers") or []]
    d_cot, d_eval = default_max_tokens(specs)
    given.setdefault("max_tokens", d_cot)
    given.setdefault("eval_max_tokens", d_eval)
    try:
        cfg = pipeline.GenConfig(**{**given, "teachers": specs})
    except ValueError as exc:  # a sampling setting out of range (GenParams)
        raise ConfigError(f"{exc}; see `python -m mirror_core generate --help`.") from None
    return cfg


def print_estimate(est: pricing.Estimate, as_json: bool) -> None:
    d = est.as_dict()
    if as_json:
        print(json.dumps(d))
        return
    print(f"requests      {d['requests']} ({d['cached']} already answered, {d['to_send']} to send)")
    print(f"input tokens  ~{d['input_tokens']}")
    print(f"output tokens at most {d['max_output_tokens']}")
    print(f"cost          at most ${d['cost_usd']:.4f}")
    for spec, t in d["by_teacher"].items():
        print(f"  {spec:28} {t['requests']:>6} requests  ${t['cost_usd']:.4f}")
    if d["unpriced"]:
        print(f"no price for: {', '.join(d['unpriced'])} (counted as $0; `prices set` adds one)")


def cmd_generate(args) -> int:
    conn = store.connect()
    cfg = build_config(conn, args)
    est = pipeline.estimate(conn, cfg)
    if args.estimate:
        print_estimate(est, args.json)
        return 0
    if cfg.split == "test" and any(s.kind == "palm" for s in cfg.specs):
        print("note: PaLM CoTs on the test split are a reference for comparing students with the teacher; "
              "they are never trained on (snapshots train on train and select on dev)")
    # The same checks as the Generate page's (teachers, keys, questions), in generation.job.submit.
    run_id = gen_job.submit(conn, cfg, name=args.name, device=args.device)
    print(f"run {run_id}: generate queued ({est.requests} requests, at most ${est.cost_usd:.4f})")
    return print_wait(conn, run_id) if args.wait else 0


def cmd_prompts_list(args) -> int:
    for t in prompts.list_templates(store.connect()):
        print(f"{t['name']:24} {t['kind']:10} v{t['version']} ({t['versions']} version(s))")
    return 0


def cmd_prompts_show(args) -> int:
    t = prompts.get(store.connect(), args.name, args.version)
    print(f"# {t.name} v{t.version} ({t.kind})")
    print(t.body)
    return 0


def cmd_prompts_edit(args) -> int:
    body = sys.stdin.read() if args.file == "-" else open(args.file, encoding="utf-8").read()
    t = prompts.edit(store.connect(), args.name, body, args.kind)
    print(f"{t.name} is now v{t.version}")
    return 0


def cmd_prices_list(args) -> int:
    for r in pricing.price_rows(store.connect()):
        print(f"{r['provider']:10} {r['model']:28} in ${r['input_per_mtok']}/Mtok  out ${r['output_per_mtok']}/Mtok")
    return 0


def cmd_prices_set(args) -> int:
    pricing.set_price(store.connect(), args.provider, args.model, args.input_per_mtok, args.output_per_mtok)
    print(f"price of {args.provider}:{args.model} set")
    return 0
