"""The generation pipeline (PAPERS.md §1): N CoTs per question per teacher, K self-evaluations per CoT.

Each step is idempotent: requests go through the call cache (`calls`), and the rows derived from answers
are inserted with INSERT OR IGNORE on (example, call) for CoTs and (rationale, call) for self-evaluations,
in the same transaction that records the answer. One cached answer can serve several questions (two
datasets sharing a question): each question asked gets its own row. Running the pipeline again — after a
crash, a kill, a stop or to add teachers — sends only the requests that have no answer yet and writes
nothing twice.

Replay teachers answer from a file: the file is the source of truth for each (question, CoT #) slot, so
an edited output replaces that slot's row (and, for a CoT, the self-evaluations of its old text) instead
of adding a second one. They give every output they hold unless `n_cots` / `k_evals` say otherwise, and
the summary says what was left out (`replay`).
"""

from __future__ import annotations

import re
import sqlite3
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any, Callable

from mirror_core import answers, prompts, store
from mirror_core.agreement import agreement
from mirror_core.configs import check_options, config_from_dict, option
from mirror_core.errors import ConfigError, DataImportError, NotFoundError, TeacherError
from mirror_core.generation import pricing
from mirror_core.generation.calls import FAILED, Call, CallEngine, RetryPolicy, Stats
from mirror_core.teachers.base import GenParams, Teacher, TeacherRequest

_VERDICT_RE = re.compile(r"evaluation result\s*:?\s*\**\s*the given answer is\s*\**\s*(correct|wrong|incorrect|uncertain)",
                         re.IGNORECASE)
_CONF_RE = re.compile(r"confidence\s*:?\s*(0(?:\.\d+)?|1(?:\.0+)?|\.\d+|\d{1,3}\s*%)", re.IGNORECASE)


@dataclass
class GenConfig:
    """What a generate job does; stored as the run's config (never a key in it)."""

    # Each field's help is what `generate --help` shows; lo/hi/choices are the bounds the CLI refuses at
    # parse time; __post_init__ applies the same bounds to a config from a page or the store
    # (check_options), after the checks with their own sentences (split, limit, dev_limit, n_cots, ...).
    dataset: str = option("dataset name (see `data list`)")
    teachers: list[str] = option("teacher specs, one per teacher; each writes its own CoTs and self-evaluations")
    split: str = option("split whose questions the teachers answer", "train", choices=("train", "dev", "test"))
    limit: int | None = option("only the first N questions of the split; None: all of them", None, lo=1)
    # The first N dev questions too, so a snapshot made from this run has dev items for model selection
    # (best checkpoint, early stopping). Only with split='train'.
    dev_limit: int = option("with split train: also the first N dev questions, for model selection in training",
                            0, lo=0)
    # None: DEFAULT_N_COTS / DEFAULT_K_EVALS for teachers that write, everything a replay file holds.
    n_cots: int | None = option("CoTs per question per teacher; None: 3 (a replay teacher: all its file holds)",
                                None, lo=1)
    k_evals: int | None = option("self-evaluations per CoT; None: 2 (a replay teacher: all its file holds)",
                                 None, lo=0)
    temperature: float = option("sampling temperature of every teacher request", 0.7, lo=0, hi=2)
    max_tokens: int = option("CoT length cap in tokens", 512, lo=1)
    eval_max_tokens: int = option("self-evaluation length cap in tokens", 384, lo=1)
    seed: int | None = option("sampling seed: sample #i of a prompt asks with seed + i; None: unseeded", 0)
    base_url: str | None = option("OpenAI-compatible (or Anthropic) server URL, e.g. http://localhost:11434/v1",
                                  None)
    budget_usd: float | None = option("stop cleanly once this many US dollars have been spent; None: no limit",
                                      None, lo=0)
    # lo_open: a timeout of 0 would fail every request, so the CLI wants more than 0.
    timeout_s: float | None = field(default=None, metadata={
        "help": "per-request timeout in seconds; None: 120", "lo": 0, "hi": None, "choices": None,
        "lo_open": True})
    templates: dict[str, int] = option("prompt template versions to use (name=version, e.g. cot-numeric=2); "
                                       "a template not named: its newest version, fixed when the job is made",
                                       default_factory=dict)
    retry_failed: bool = option("send again requests that failed before", False)
    max_retries: int = option("retries of a request after a 429, a 5xx, a timeout or a connection error", 4, lo=0)
    backoff_s: float = option("first wait in seconds before a retry (doubled on each retry, at most 60)", 1.0, lo=0)
    max_in_flight: int | None = option("requests in flight at once per provider; None: the teacher's default",
                                       None, lo=1)
    requests_per_minute: float | None = option("requests per minute per provider; None: the teacher's default, "
                                               "0: no limit", None, lo=0)
    # Who judges each CoT: "teacher" (K self-evaluations by the teacher that wrote it) or "reference"
    # (a verdict from the CoT's answer vs the gold, no teacher calls: generation/reference.py).
    evaluator: str = option("who judges each CoT: 'teacher' (its K self-evaluations) or 'reference' (a verdict "
                            "from the CoT's answer vs the gold, confidence 1.0, no critique, no teacher calls)",
                            "teacher", choices=("teacher", "reference"))

    def __post_init__(self):
        if self.evaluator not in ("teacher", "reference"):
            raise ConfigError(f"evaluator must be 'teacher' or 'reference', not '{self.evaluator}'.")
        if not self.teachers:
            raise ConfigError("Give at least one teacher (e.g. --teacher local).")
        from mirror_core.teachers.registry import TeacherSpec

        # Parsed once, here, where a spec enters (the CLI, the Generate page, a job's stored config); the
        # config keeps the canonical strings, `specs` the parsed objects. Paths are resolved in the caller's
        # folder: the job runs from the project root.
        self.specs = [TeacherSpec.parse(t).absolute() for t in self.teachers]
        self.teachers = [s.raw for s in self.specs]
        if (self.n_cots is not None and self.n_cots < 1) or (self.k_evals is not None and self.k_evals < 0):
            raise ConfigError("n_cots must be at least 1 and k_evals at least 0.")
        if self.limit is not None and self.limit < 1:
            raise ConfigError("limit must be at least 1 (or none for the whole split).")
        if self.split not in ("train", "dev", "test"):
            raise ConfigError(f"split must be train, dev or test, not '{self.split}'.")
        if self.dev_limit < 0 or (self.dev_limit and self.split != "train"):
            raise ConfigError("dev_limit adds dev questions to a train-split run; use 0 for other splits.")
        GenParams(temperature=self.temperature, max_tokens=self.max_tokens)  # range checks
        # Every other field's bounds (retries, backoff, rate limits, budget, timeout): the CLI refuses them
        # at parse time, and so must a page or a stored config, with the same rule.
        check_options(self, ConfigError)
        if self.timeout_s is not None and self.timeout_s <= 0:
            raise ConfigError(f"timeout_s must be more than 0 seconds, got {self.timeout_s}.")

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "GenConfig":
        return config_from_dict(cls, d, label="generate", error=ConfigError)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


DEFAULT_N_COTS, DEFAULT_K_EVALS = 3, 2


def _take(asked: int | None, default: int, avail: int | None) -> int:
    """How many samples to request: what was asked (or the default), within what a replay file holds;
    a replay file gives all it holds when nothing was asked."""
    if avail is None:
        return default if asked is None else asked
    return avail if asked is None else min(asked, avail)


# ---------------------------------------------------------------- inputs

def config_examples(conn: sqlite3.Connection, cfg: "GenConfig") -> list[dict]:
    """The questions a run covers: the split's first `limit`, plus the first `dev_limit` dev questions."""
    examples = select_examples(conn, cfg.dataset, cfg.split, cfg.limit)
    if cfg.dev_limit:
        examples += select_examples(conn, cfg.dataset, "dev", cfg.dev_limit)
    return examples


def count_split(conn: sqlite3.Connection, dataset: str, split: str) -> int:
    """How many questions a dataset has in a split (0 when the dataset does not exist)."""
    return conn.execute("SELECT COUNT(*) FROM examples e JOIN datasets d ON d.id = e.dataset_id"
                        " WHERE d.name = ? AND e.split = ?", (dataset, split)).fetchone()[0]


def select_examples(conn: sqlite3.Connection, dataset: str, split: str, limit: int | None) -> list[dict]:
    """The first `limit` examples of a dataset's split, in import order."""
    ds = conn.execute("SELECT id FROM datasets WHERE name = ?", (dataset,)).fetchone()
    if ds is None:
        names = ", ".join(r[0] for r in conn.execute("SELECT name FROM datasets ORDER BY name")) or "none yet"
        raise NotFoundError(f"No dataset '{dataset}' (datasets: {names}). Import one first: "
                            "`python -m mirror_core data import ...`.")
    sql = "SELECT * FROM examples WHERE dataset_id = ? AND split = ? ORDER BY id"
    args: tuple = (ds["id"], split)
    if limit:
        sql += " LIMIT ?"
        args += (limit,)
    rows = [dict(r) for r in conn.execute(sql, args)]
    if not rows:
        raise NotFoundError(f"Dataset '{dataset}' has no examples in split '{split}'.")
    for r in rows:
        r["choices"] = store.loads(r["choices"])
    return rows


def resolve_templates(conn: sqlite3.Connection, task_types) -> dict[str, int]:
    """The newest version of each template the run needs, to freeze in its config."""
    names = [prompts.cot_name(t) for t in sorted(set(task_types))] + [prompts.SELF_EVAL]
    return {n: prompts.get(conn, n).version for n in names}


def _template(conn, cfg: GenConfig, name: str) -> prompts.Template:
    return prompts.get(conn, name, cfg.templates.get(name))


def _params(cfg: GenConfig, i: int, max_tokens: int) -> GenParams:
    return GenParams(temperature=cfg.temperature, max_tokens=max_tokens,
                     seed=None if cfg.seed is None else cfg.seed + i, sample_index=i)


def cot_calls(conn, teacher: Teacher, examples: list[dict], cfg: GenConfig) -> list[Call]:
    out = []
    for ex in examples:
        t = _template(conn, cfg, prompts.cot_name(ex["task_type"]))
        messages = prompts.render_cot(t, ex["question"], ex["choices"])
        meta = {"purpose": "cot", "ext_id": ex["ext_id"], "gold": ex["answer"], "task_type": ex["task_type"],
                "choices": ex["choices"]}
        n = _take(cfg.n_cots, DEFAULT_N_COTS, teacher.samples_available(meta))
        for i in range(n):
            req = TeacherRequest(messages=messages, params=_params(cfg, i, cfg.max_tokens), meta=meta)
            out.append(Call(teacher, req, t.name, t.version, "cot", tag={"example": ex, "i": i}))
    return out


def eval_calls(conn, teacher: Teacher, items: list[tuple[dict, dict]], cfg: GenConfig) -> list[Call]:
    """K self-evaluation requests per (example, rationale) pair, by the teacher that wrote the CoT."""
    t = _template(conn, cfg, prompts.SELF_EVAL)
    out = []
    for ex, rat in items:
        messages = prompts.render_self_eval(t, ex["question"], ex["choices"], rat["text"], rat["parsed_answer"])
        meta = {"purpose": "self_eval", "ext_id": ex["ext_id"], "cot_index": rat["sample_index"],
                "cot_correct": None if rat["correct"] is None else bool(rat["correct"]),
                "task_type": ex["task_type"]}
        k = _take(cfg.k_evals, DEFAULT_K_EVALS, teacher.samples_available(meta))
        for j in range(k):
            # Two CoTs of one question can read the same (e.g. at temperature 0); the CoT's index in the
            # sample index keeps their K evaluations distinct requests (stable when K changes).
            idx = EVAL_INDEX_STRIDE * rat["sample_index"] + j
            req = TeacherRequest(messages=messages, params=_params(cfg, idx, cfg.eval_max_tokens), meta=meta)
            out.append(Call(teacher, req, t.name, t.version, "self_eval", tag={"example": ex, "rationale": rat, "j": j}))
    return out


# ---------------------------------------------------------------- parsing

def parse_verdict(text: str) -> tuple[str | None, float | None]:
    """(verdict, confidence) of a self-evaluation; verdict None when it has no verdict line."""
    matches = _VERDICT_RE.findall(text or "")
    verdict = matches[-1].lower() if matches else None
    if verdict == "incorrect":
        verdict = "wrong"
    conf = None
    m = _CONF_RE.search(text or "")
    if m:
        s = m.group(1).replace(" ", "")
        conf = float(s[:-1]) / 100 if s.endswith("%") else float(s)
        conf = conf if 0.0 <= conf <= 1.0 else None
    return verdict, conf


# ---------------------------------------------------------------- writing results

ANSWERED = ("ok", "truncated")
EVAL_INDEX_STRIDE = 1000


def _replaces_slots(teacher: Teacher) -> bool:
    """Replay outputs: the file decides what each (question, CoT #) slot holds."""
    return teacher.provider == "replay"


def _store_cot(conn, run_id, call: Call, row: dict) -> None:
    if row["status"] not in ANSWERED:
        return
    ex, i = call.tag["example"], call.tag["i"]
    text = row["response"] or ""
    pred, parse_status, correct = answers.grade(text, ex["answer"], ex["task_type"], ex["choices"])
    ts = store.now()
    truncated = row["status"] == "truncated"
    status, reason = ("flagged", "truncated at max_tokens") if truncated else ("active", None)
    author = call.teacher.spec
    if _replaces_slots(call.teacher):
        old = conn.execute("SELECT id, call_id, text, revision FROM rationales WHERE example_id = ? AND kind = 'cot'"
                           " AND author = ? AND sample_index = ? AND call_id IS NOT NULL ORDER BY id LIMIT 1",
                           (ex["id"], author, i)).fetchone()
        if old is not None and old["call_id"] != row["id"]:
            if old["revision"]:
                return  # a person edited this CoT: their text stays; the file's new version is not applied
            if old["text"] == text:
                conn.execute("UPDATE rationales SET call_id = ?, updated_at = ? WHERE id = ?", (row["id"], ts, old["id"]))
                return
            # The file now holds another text: this slot's row follows it, and the evaluations of the old
            # text go (the new text's come from their own requests).
            conn.execute("DELETE FROM self_evals WHERE rationale_id = ?", (old["id"],))
            conn.execute("UPDATE rationales SET call_id = ?, run_id = ?, text = ?, parsed_answer = ?, parse_status = ?,"
                         " correct = ?, status = ?, status_reason = ?, updated_at = ? WHERE id = ?",
                         (row["id"], run_id, text, pred, parse_status, correct, status, reason, ts, old["id"]))
            return
    conn.execute(
        "INSERT OR IGNORE INTO rationales (example_id, kind, author, call_id, run_id, sample_index, text,"
        " parsed_answer, parse_status, correct, status, status_reason, created_at, updated_at)"
        " VALUES (?, 'cot', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (ex["id"], author, row["id"], run_id, i, text, pred, parse_status, correct, status, reason, ts, ts))


def _given_verdict(row: dict) -> dict | None:
    """A verdict and confidence the teacher gave as data (a replay file's self-evaluation object, or the
    local teacher's verdict read from log-probabilities), over what the text parses to."""
    raw = store.loads(row.get("raw")) if row.get("raw") else None
    given = ((raw or {}).get("response") or {}).get("self_eval") if isinstance(raw, dict) else None
    return given if isinstance(given, dict) else None


def _store_eval(conn, call: Call, row: dict) -> None:
    if row["status"] not in ANSWERED:
        return
    rat, j = call.tag["rationale"], call.tag["j"]
    text = row["response"] or ""
    verdict, conf = parse_verdict(text)
    given = _given_verdict(row)
    if given is not None:
        verdict = given.get("verdict") or verdict
        conf = given.get("confidence") if given.get("confidence") is not None else conf
    evaluator = call.teacher.spec
    if _replaces_slots(call.teacher):
        old = conn.execute("SELECT id, call_id FROM self_evals WHERE rationale_id = ? AND evaluator = ?"
                           " AND sample_index = ? AND call_id IS NOT NULL ORDER BY id LIMIT 1",
                           (rat["id"], evaluator, j)).fetchone()
        if old is not None and old["call_id"] != row["id"]:
            conn.execute("UPDATE self_evals SET call_id = ?, critique = ?, verdict = ?, confidence = ?,"
                         " parse_status = ? WHERE id = ?",
                         (row["id"], text, verdict, conf, "ok" if verdict else "parse_error", old["id"]))
            return
    conn.execute(
        "INSERT OR IGNORE INTO self_evals (rationale_id, evaluator, call_id, sample_index, critique, verdict,"
        " confidence, parse_status, created_at) VALUES (?,?,?,?,?,?,?,?,?)",
        (rat["id"], evaluator, row["id"], j, text, verdict, conf,
         "ok" if verdict else "parse_error", store.now()))


# ---------------------------------------------------------------- the whole run

def estimate(conn: sqlite3.Connection, cfg: GenConfig, teachers: list[Teacher] | None = None) -> pricing.Estimate:
    """Requests and worst-case cost before a run. Self-evaluation prompts are sized as if each CoT used
    max_tokens. Requests already answered in the cache count as cached (free). API teachers are not built
    (their parsed specs, `cfg.specs`, name provider and model); replay files are read, to count what they hold."""
    from mirror_core.teachers.registry import make_teacher

    examples = config_examples(conn, cfg)
    if not cfg.templates:
        cfg.templates = resolve_templates(conn, {e["task_type"] for e in examples})
    est = pricing.Estimate()
    built = {t.spec: t for t in (teachers or [])}
    for parsed in cfg.specs:
        spec, provider = parsed.raw, parsed.kind
        model = parsed.model or ("smollm2" if provider == "local" else "default")
        price = pricing.get_price(conn, provider, model)
        replay = built.get(spec) or (make_teacher(parsed) if provider == "replay" else None)
        author = replay.spec if replay is not None else spec
        in_chars = 0
        n = n_eval = 0
        for ex in examples:
            t = _template(conn, cfg, prompts.cot_name(ex["task_type"]))
            chars = sum(len(m["content"]) for m in prompts.render_cot(t, ex["question"], ex["choices"]))
            if replay is not None:
                meta = {"purpose": "cot", "ext_id": ex["ext_id"]}
                k = _take(cfg.n_cots, DEFAULT_N_COTS, replay.samples_available(meta))
                n_eval += sum(_take(cfg.k_evals, DEFAULT_K_EVALS, replay.samples_available(
                    {"purpose": "self_eval", "ext_id": ex["ext_id"], "cot_index": i})) for i in range(k))
            else:
                k = cfg.n_cots or DEFAULT_N_COTS
                n_eval += k * (DEFAULT_K_EVALS if cfg.k_evals is None else cfg.k_evals)
            in_chars += chars * k
            n += k
        se = _template(conn, cfg, prompts.SELF_EVAL)
        eval_chars = n_eval * (len(se.body) + 200 + cfg.max_tokens * pricing.CHARS_PER_TOKEN)
        cached = min(n + n_eval, _count_cached(conn, author, examples, cfg))
        est.add(author, price, n + n_eval, cached, pricing.estimate_tokens(in_chars) +
                pricing.estimate_tokens(int(eval_chars)), n * cfg.max_tokens + n_eval * cfg.eval_max_tokens)
    return est


def _count_cached(conn, spec, examples, cfg) -> int:
    # Cheap: count answered calls of this teacher whose rationale belongs to these examples, plus their evals.
    ids = [e["id"] for e in examples]
    if not ids:
        return 0
    n_max = cfg.n_cots if cfg.n_cots is not None else 1 << 30
    k_max = cfg.k_evals if cfg.k_evals is not None else 1 << 30
    q = ",".join("?" * len(ids))
    n_cot = conn.execute(f"SELECT COUNT(*) FROM rationales WHERE kind='cot' AND author=? AND example_id IN ({q})"
                         f" AND sample_index < ?", (spec, *ids, n_max)).fetchone()[0]
    n_eval = conn.execute(f"SELECT COUNT(*) FROM self_evals s JOIN rationales r ON r.id = s.rationale_id"
                          f" WHERE r.kind='cot' AND r.author=? AND s.evaluator=? AND r.example_id IN ({q})"
                          f" AND r.sample_index < ? AND s.sample_index < ?",
                          (spec, spec, *ids, n_max, k_max)).fetchone()[0]
    return n_cot + n_eval


def _evals_owed(teacher: Teacher, ex: dict, i: int, cfg: GenConfig) -> int:
    """Self-evaluations a CoT slot is due (what `eval_calls` would ask once the CoT exists)."""
    return _take(cfg.k_evals, DEFAULT_K_EVALS, teacher.samples_available(
        {"purpose": "self_eval", "ext_id": ex["ext_id"], "cot_index": i}))


def replay_coverage(teacher: Teacher, examples: list[dict], cfg: GenConfig) -> dict[str, Any] | None:
    """For a replay teacher: what its file holds against what this run takes, or None for other teachers.
    Raises DataImportError when none of the file's ids is a question of the run."""
    ids = getattr(teacher, "ids", None)
    if ids is None:
        return None
    in_file = ids()
    ext = {e["ext_id"] for e in examples}
    matched = [q for q in in_file if q in ext]
    if in_file and not matched:
        first = ", ".join(f"'{q}'" for q in in_file[:3])
        run_first = ", ".join(f"'{e['ext_id']}'" for e in examples[:3])
        raise DataImportError(
            f"none of the {len(in_file)} question ids of {teacher.spec} is a question of this run (dataset "
            f"'{cfg.dataset}', split '{cfg.split}'); the file's first ids: {first}; the run's: {run_first}. "
            "Replay ids must be the dataset's ids (its id column at import).",
            file=getattr(teacher, "path", None))
    held = taken = evals_held = evals_taken = 0
    for e in examples:
        n_avail = teacher.samples_available({"purpose": "cot", "ext_id": e["ext_id"]}) or 0
        n = _take(cfg.n_cots, DEFAULT_N_COTS, n_avail)
        held += n_avail
        taken += n
        for i in range(n_avail):
            k_avail = teacher.samples_available({"purpose": "self_eval", "ext_id": e["ext_id"], "cot_index": i}) or 0
            evals_held += k_avail
            if i < n:
                evals_taken += _take(cfg.k_evals, DEFAULT_K_EVALS, k_avail)
    no_output = [e["ext_id"] for e in examples if not teacher.samples_available({"purpose": "cot", "ext_id": e["ext_id"]})]
    not_in_run = [q for q in in_file if q not in ext]
    return {"ids_in_file": len(in_file), "questions_matched": len(matched),
            "ids_not_in_run": len(not_in_run), "first_ids_not_in_run": not_in_run[:5],
            "questions_without_output": len(no_output), "first_questions_without_output": no_output[:5],
            "cots_held": held, "cots_taken": taken, "cots_skipped": held - taken,
            "self_evals_held": evals_held, "self_evals_taken": evals_taken,
            "self_evals_skipped": evals_held - evals_taken}


def _describe_coverage(spec: str, c: dict) -> str:
    parts = [f"{spec}: {c['cots_taken']} of {c['cots_held']} CoTs and {c['self_evals_taken']} of "
             f"{c['self_evals_held']} self-evaluations for the {c['questions_matched']} questions it covers"]
    if c["cots_skipped"] or c["self_evals_skipped"]:
        parts.append(f"skipped {c['cots_skipped']} CoTs and {c['self_evals_skipped']} self-evaluations "
                     "(n_cots / k_evals; leave them unset to take all)")
    if c["ids_not_in_run"]:
        parts.append(f"{c['ids_not_in_run']} ids not in this run (e.g. {', '.join(c['first_ids_not_in_run'][:3])})")
    if c["questions_without_output"]:
        parts.append(f"{c['questions_without_output']} questions of the run have no output in the file")
    return "; ".join(parts)


def run(conn: sqlite3.Connection, cfg: GenConfig, teachers: list[Teacher], *, run_id: int | None = None,
        should_stop: Callable[[], bool] = lambda: False,
        progress: Callable[[int, int, str, float], None] | None = None,
        log: Callable[[str], None] = print) -> dict[str, Any]:
    """Generate CoTs then self-evaluations for every teacher; returns a summary (counts, cost, agreement,
    `failed` requests, `self_evals_owed` by CoTs that failed, what replay files held and what was skipped)."""
    examples = config_examples(conn, cfg)
    if not cfg.templates:
        cfg.templates = resolve_templates(conn, {e["task_type"] for e in examples})
    coverage = {}
    for t in teachers:
        c = replay_coverage(t, examples, cfg)
        if c is not None:
            coverage[t.spec] = c
            log(_describe_coverage(t.spec, c))
    engine = CallEngine(conn, run_id, budget_usd=cfg.budget_usd, retry_failed=cfg.retry_failed,
                        should_stop=should_stop, log=log,
                        retry=RetryPolicy(max_retries=cfg.max_retries, backoff_s=cfg.backoff_s),
                        limits={t.provider: (cfg.max_in_flight or t.max_in_flight,
                                             t.requests_per_minute if cfg.requests_per_minute is None
                                             else (cfg.requests_per_minute or None)) for t in teachers})
    cots = [c for t in teachers for c in cot_calls(conn, t, examples, cfg)]
    n_eval_guess = 0 if cfg.evaluator == "reference" else \
        sum(_evals_owed(c.teacher, c.tag["example"], c.tag["i"], cfg) for c in cots)
    base = {"done": 0}

    def on_progress(phase_total: int, s: Stats, total: int, note: str):
        done = base["done"] + s.cached + s.sent
        if progress:
            progress(done, total, f"{note}: {s.cached + s.sent}/{phase_total}", engine.spent)

    total = len(cots) + n_eval_guess
    log(f"generating {len(cots)} CoTs for {len(examples)} questions with {', '.join(t.spec for t in teachers)}")
    s1 = engine.run(cots, lambda c, r: _store_cot(conn, run_id, c, r),
                    lambda s: on_progress(len(cots), s, total, "CoTs"))
    base["done"] = s1.cached + s1.sent
    summary = {"cots": _stats_dict(s1)}
    if coverage:
        summary["replay"] = coverage
    if s1.stopped or should_stop():
        summary["stopped"] = True
        return _finish(conn, summary, examples, teachers, run_id, engine)

    # Self-evaluations: for each answered CoT of these calls, K evaluations by the teacher that wrote it.
    # A cached answer may serve several questions, so a CoT is found by (question, request), not request.
    rows = _rationales_for_calls(conn, list({c.hash for c in cots}))
    items_by_teacher: dict[int, list] = {}
    owed = 0
    n_rats = 0
    for c in cots:
        rat = rows.get((c.tag["example"]["id"], c.hash))
        if rat is None:
            status = conn.execute("SELECT status FROM teacher_calls WHERE request_hash = ?", (c.hash,)).fetchone()
            if status is not None and status[0] in FAILED + ("pending",):
                owed += _evals_owed(c.teacher, c.tag["example"], c.tag["i"], cfg)  # due once the CoT is answered
            continue
        n_rats += 1
        items_by_teacher.setdefault(id(c.teacher), []).append((c.tag["example"], rat, c.teacher))
    if cfg.evaluator == "reference":
        from mirror_core.generation import reference

        counts = reference.write_verdicts(conn, [rat["id"] for items in items_by_teacher.values()
                                                 for _, rat, _ in items])
        log(f"reference verdicts (CoT's answer vs gold) for {n_rats} CoTs: {counts['written']} written, "
            f"{counts['already']} already there, {counts['unknown']} with unknown correctness")
        summary["reference_verdicts"] = counts
        return _finish(conn, summary, examples, teachers, run_id, engine)
    evals = []
    for items in items_by_teacher.values():
        evals += eval_calls(conn, items[0][2], [(ex, rat) for ex, rat, _ in items], cfg)
    total = len(cots) + len(evals) + owed
    log(f"generating {len(evals)} self-evaluations of {n_rats} CoTs"
        + (f"; {owed} more are owed by CoTs that failed" if owed else ""))
    s2 = engine.run(evals, lambda c, r: _store_eval(conn, c, r),
                    lambda s: on_progress(len(evals), s, total, "self-evaluations"))
    summary["self_evals"] = _stats_dict(s2)
    summary["self_evals_owed"] = owed
    if s2.stopped:
        summary["stopped"] = True
    return _finish(conn, summary, examples, teachers, run_id, engine)


def _rationales_for_calls(conn, hashes: list[str]) -> dict[tuple[int, str], dict]:
    out = {}
    for i in range(0, len(hashes), 500):
        chunk = hashes[i:i + 500]
        for r in conn.execute(
                "SELECT r.*, c.request_hash FROM rationales r JOIN teacher_calls c ON c.id = r.call_id"
                f" WHERE c.request_hash IN ({','.join('?' * len(chunk))})", chunk):
            out[(r["example_id"], r["request_hash"])] = dict(r)
    return out


def _stats_dict(s: Stats) -> dict[str, Any]:
    return {"requests": s.total, "cached": s.cached, "sent": s.sent, "attempts": s.attempts,
            "retries": s.retries, "by_status": s.by_status, "failed": s.failed, "cost_usd": round(s.cost_usd, 6)}


def _finish(conn, summary, examples, teachers, run_id, engine) -> dict[str, Any]:
    ids = [e["id"] for e in examples]
    specs = [t.spec for t in teachers]
    summary["cost_usd"] = round(engine.spent, 6)
    summary["failed"] = sum(summary[k].get("failed", 0) for k in ("cots", "self_evals") if k in summary)
    summary["possibly_billed_twice"] = pricing.possibly_billed_twice(conn, run_id) if run_id is not None else 0
    summary["agreement"] = agreement_summary(conn, ids, specs)
    summary["verdict_vs_gold"] = verdict_vs_gold(conn, ids, specs)
    answered = sum(summary[k]["by_status"].get(s, 0) for k in ("cots", "self_evals") if k in summary
                   for s in ("ok", "truncated", "refused"))
    sent_or_cached = sum(summary[k]["requests"] for k in ("cots", "self_evals") if k in summary)
    if sent_or_cached and not answered and not summary.get("stopped"):
        first = conn.execute("SELECT error FROM teacher_calls WHERE run_id = ? AND error IS NOT NULL LIMIT 1",
                             (run_id,)).fetchone() if run_id is not None else None
        raise TeacherError("Every teacher request failed; first error: "
                           f"{first[0] if first else 'see the error table'}. Fix it, then resume the run.")
    return summary


# ---------------------------------------------------------------- agreement helpers

def agreement_summary(conn, example_ids: list[int], authors: list[str] | None = None) -> dict[str, Any]:
    """The run's CoTs over its questions: accuracy, and `agreement.agreement` per question, averaged."""
    if not example_ids:
        return {"questions": 0}
    q = ",".join("?" * len(example_ids))
    sql = (f"SELECT example_id, author, parsed_answer, correct, status FROM rationales"
           f" WHERE kind='cot' AND example_id IN ({q})")
    args: list = list(example_ids)
    if authors:
        sql += f" AND author IN ({','.join('?' * len(authors))})"
        args += authors
    per: dict[int, list] = {}
    for r in conn.execute(sql + " ORDER BY example_id, id", args):
        per.setdefault(r["example_id"], []).append(dict(r))
    rows = [a for a in (agreement(cots) for cots in per.values()) if a["cots"]]
    if not rows:
        return {"questions": 0}
    n = len(rows)
    cots = sum(r["cots"] for r in rows)
    return {"questions": n, "cots": cots,
            "cot_accuracy": round(sum(r["correct"] for r in rows) / cots, 4),
            "mean_majority_share": round(sum(r["majority_share"] for r in rows) / n, 4),
            "unanimous": sum(1 for r in rows if r["distinct_answers"] == 1 and r["majority_share"] == 1.0),
            "majority_accuracy": round(sum(1 for r in rows if r["majority_matches_gold"]) / n, 4)}


def verdict_vs_gold(conn, example_ids: list[int], authors: list[str] | None = None) -> dict[str, Any]:
    """How often a self-evaluation's verdict matches the CoT's correctness against the gold."""
    if not example_ids:
        return {"self_evals": 0}
    q = ",".join("?" * len(example_ids))
    sql = (f"SELECT s.verdict, s.parse_status, r.correct FROM self_evals s JOIN rationales r ON r.id = s.rationale_id"
           f" WHERE r.kind = 'cot' AND r.example_id IN ({q})")
    args: list = list(example_ids)
    if authors:
        sql += f" AND r.author IN ({','.join('?' * len(authors))})"
        args += authors
    confusion: Counter = Counter()
    parse_errors = uncertain = 0
    for r in conn.execute(sql, args):
        if r["verdict"] is None:
            parse_errors += 1
        elif r["verdict"] == "uncertain":
            uncertain += 1
        elif r["correct"] is not None:
            confusion[(r["verdict"], bool(r["correct"]))] += 1
    decided = sum(confusion.values())
    agree = confusion[("correct", True)] + confusion[("wrong", False)]
    return {"self_evals": decided + parse_errors + uncertain, "decided": decided, "uncertain": uncertain,
            "parse_errors": parse_errors, "agreement": round(agree / decided, 4) if decided else None,
            "confusion": {f"{v}|gold_{'right' if c else 'wrong'}": n for (v, c), n in confusion.items()}}
