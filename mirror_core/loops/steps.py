"""Plumbing shared by the three loops: step records, the call budget, the student, teacher calls.

A loop is a sequence of (round, step) units. Each step computes first and writes last: its rows and its
`loop_rounds` record go in one transaction, so a killed loop leaves either the whole step or nothing, and
on resume a recorded step is skipped (its decision is read back). A step interrupted before its record
is redone; its teacher requests hit the request cache of the generation call layer, so nothing is paid
twice.

Budget: the number of teacher requests the loop issues (cache hits included, so the count does not depend
on what an earlier run happened to pay for). Every step records how many it issued (`calls_spent`); a
step is sized from what is left before it starts, so the total never exceeds the budget.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from mirror_core import answers, formats, store
from mirror_core.configs import option
from mirror_core.errors import LoopError, NotFoundError


# ---------------------------------------------------------------- config fields

@dataclass
class LoopConfig:
    """The settings every loop's Config starts with: what it distils, into which student, from which
    teachers. Each loop adds its own after these, budget and rounds included (their defaults differ)."""

    dataset: str = option("dataset name (see `data list`): the loop learns on its train split and measures "
                          "on dev (else test)")
    student: str = option("student: smollm2, tiny, a local folder or run:N (the checkpoint of train run N)",
                          "smollm2")
    teachers: list[str] | None = option("teacher specs, one per teacher, e.g. fake:a, openai:gpt-4o-mini", None)


# Help of the settings that several loops have, so the same setting reads the same in each loop's --help.
HELP = {
    "budget": "teacher requests the whole loop may issue, answers from the request cache included",
    "rounds": "feedback rounds",
    "pool": "train questions the student answers per round",
    "eval_limit": "held-out questions the student is measured on after each round",
    "max_new_tokens": "length cap in tokens of what the student writes",
    "train_epochs": "epochs of fine-tuning per round",
    "train_steps": "optimizer steps of fine-tuning per round; 0: train_epochs decides",
    "teacher_max_tokens": "length cap in tokens of each teacher answer",
    "seed": "seed of the student's sampling, the random choices and training",
}


def more_than_zero(help: str, default: Any) -> Any:
    """A number field that must be more than 0 (a learning rate, epochs): the CLI refuses 0 at parse time."""
    return field(default=default, metadata={"help": help, "lo": 0, "hi": None, "choices": None, "lo_open": True})


# ---------------------------------------------------------------- step records

def step_record(conn: sqlite3.Connection, run_id: int, rnd: int, step: str) -> dict | None:
    """The decision a finished step stored, or None when it has not finished."""
    row = conn.execute("SELECT decision FROM loop_rounds WHERE run_id = ? AND round = ? AND step = ?",
                       (run_id, rnd, step)).fetchone()
    return store.loads(row["decision"]) if row else None


def write_step(conn: sqlite3.Connection, run_id: int, rnd: int, step: str, decision: dict,
               calls: int = 0) -> None:
    """Record a finished step (call inside the transaction that writes the step's rows)."""
    conn.execute("INSERT OR REPLACE INTO loop_rounds (run_id, round, step, decision, calls_spent, created_at)"
                 " VALUES (?, ?, ?, ?, ?, ?)", (run_id, rnd, step, store.dumps(decision), calls, store.now()))


def calls_spent(conn: sqlite3.Connection, run_id: int, prefix: str = "") -> int:
    """Teacher requests issued so far by the loop's recorded steps (those whose name starts with prefix)."""
    row = conn.execute("SELECT COALESCE(SUM(calls_spent), 0) FROM loop_rounds WHERE run_id = ? AND step LIKE ?",
                       (run_id, prefix + "%")).fetchone()
    return int(row[0])


def rounds(conn: sqlite3.Connection, run_id: int) -> list[dict]:
    """Every recorded step of a loop, in order, with its decision parsed (for the page and the CLI)."""
    return [{"round": r["round"], "step": r["step"], "calls_spent": r["calls_spent"],
             "decision": store.loads(r["decision"]), "created_at": r["created_at"]}
            for r in conn.execute("SELECT * FROM loop_rounds WHERE run_id = ? ORDER BY round, created_at",
                                  (run_id,))]


# ---------------------------------------------------------------- data

@dataclass
class Example:
    id: int
    split: str
    question: str
    choices: list | None
    answer: str
    task_type: str

    def cot_prompt(self) -> str:
        return formats.prompt("cot", self.question, self.choices)

    def question_text(self) -> str:
        return formats.format_question(self.question, self.choices)

    def read_answer(self, text: str) -> str | None:
        return answers.extract_answer(text, self.task_type, self.choices)

    def grade(self, pred: str | None) -> int | None:
        """1 right, 0 wrong, None ungradable (the gold does not parse): `answers.grade_answer`'s rule."""
        return answers.grade_answer(pred, self.answer, self.task_type, self.choices)


def dataset_id(conn: sqlite3.Connection, name: str) -> int:
    row = conn.execute("SELECT id FROM datasets WHERE name = ? OR CAST(id AS TEXT) = ?", (name, str(name))).fetchone()
    if row is None:
        raise NotFoundError(f"Dataset '{name}' does not exist; import it first (`python -m mirror_core data ...`).")
    return row["id"]


def examples(conn: sqlite3.Connection, ds_id: int, split: str, limit: int | None = None) -> list[Example]:
    """The split's examples in id order (a fixed order makes every step reproducible on resume)."""
    sql = "SELECT * FROM examples WHERE dataset_id = ? AND split = ? ORDER BY id" + (" LIMIT ?" if limit else "")
    args = (ds_id, split, limit) if limit else (ds_id, split)
    return [Example(r["id"], r["split"], r["question"], json.loads(r["choices"]) if r["choices"] else None,
                    r["answer"], r["task_type"]) for r in conn.execute(sql, args)]


def eval_examples(conn: sqlite3.Connection, ds_id: int, limit: int) -> tuple[str, list[Example]]:
    """The held-out set the loop measures on: dev if the dataset has one, else test."""
    for split in ("dev", "test"):
        ex = examples(conn, ds_id, split, limit)
        if ex:
            return split, ex
    raise LoopError("The dataset has neither a dev nor a test split to measure the student on; "
                    "re-import it with a held-out split.")


def insert_rationale(conn: sqlite3.Connection, *, example: Example, kind: str, author: str, text: str,
                     run_id: int, call_id: int | None = None, parent_id: int | None = None,
                     sample_index: int = 0, status: str = "active", status_reason: str | None = None) -> int:
    """Store one rationale with its parsed answer and correctness. A teacher output already stored for the
    same example and call (another arm or an earlier step reused a cached request) is reused, not duplicated."""
    if call_id is not None:
        # A row is (example, call), as in generation (m008's unique index): one cached answer shared by two
        # examples (the same question in two datasets) gives each example its own row.
        row = conn.execute("SELECT id FROM rationales WHERE call_id = ? AND example_id = ?",
                           (call_id, example.id)).fetchone()
        if row:
            return row["id"]
    pred, parse_status, correct = answers.grade(text, example.answer, example.task_type, example.choices)
    ts = store.now()
    cur = conn.execute(
        "INSERT INTO rationales (example_id, kind, author, call_id, parent_id, run_id, sample_index, text,"
        " parsed_answer, parse_status, correct, status, status_reason, created_at, updated_at)"
        " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
        (example.id, kind, author, call_id, parent_id, run_id, sample_index, text, pred,
         parse_status, correct, status, status_reason, ts, ts))
    return cur.lastrowid


# ---------------------------------------------------------------- the student

class Student:
    """A causal student in memory: sample explanations, score them, save/load a round's weights."""

    def __init__(self, model, tokenizer, spec: str):
        self.model, self.tokenizer, self.spec = model, tokenizer, spec

    @classmethod
    def load(cls, spec: str, device: str | None = None) -> "Student":
        """'tiny', 'smollm2', a hub id / local folder, or 'run:N' (the checkpoint of train run N)."""
        from mirror_core import config
        from mirror_core.students import checkpoints, loading

        if spec.startswith("run:"):
            model, tok, meta = checkpoints.load_for_inference(config.run_dir(int(spec[4:])), device or "cpu")
            if meta.get("arch", "causal") != "causal":
                raise LoopError(f"The loops train decoder-only students; run {spec[4:]} holds a {meta['arch']} model.")
            return cls(model, tok, spec)
        tok = loading.load_tokenizer(spec)
        return cls(loading.load_causal_lm(spec, device or "cpu"), tok, spec)

    def save(self, out_dir: Path, meta: dict | None = None) -> Path:
        """Save as a trainer output folder (out_dir/checkpoints/last), atomically, loadable by `load_student_at`."""
        from mirror_core.students import checkpoints

        m = {"student": self.spec, "arch": "causal", "format_version": formats.FORMAT_VERSION, **(meta or {})}
        return checkpoints.save(checkpoints.ckpt_dir(out_dir, checkpoints.LAST), self.model, self.tokenizer, m)

    def generate(self, prompts: Sequence[str], *, samples: int = 1, max_new_tokens: int = 96,
                 temperature: float = 0.8, seed: int = 0) -> list[list[str]]:
        from mirror_core.students.generate import generate

        if not prompts:
            return []
        out = generate(self.model, self.tokenizer, list(prompts), max_new_tokens=max_new_tokens,
                       num_samples=samples, do_sample=samples > 1, temperature=temperature, seed=seed)
        return out.texts

    def accuracy(self, exs: Sequence[Example], max_new_tokens: int = 96) -> tuple[float, list[dict]]:
        """Greedy CoT accuracy on `exs`, with each prediction (for the page)."""
        texts = self.generate([e.cot_prompt() for e in exs], max_new_tokens=max_new_tokens)
        rows = []
        for e, t in zip(exs, texts):
            pred = e.read_answer(t[0])
            rows.append({"example_id": e.id, "pred": pred, "correct": e.grade(pred)})
        # Ungradable questions (a gold that does not parse) are left out, not counted wrong.
        graded = [r["correct"] for r in rows if r["correct"] is not None]
        acc = sum(graded) / len(graded) if graded else 0.0
        return acc, rows


def device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def round_dir(run_dir: Path, arm: str, rnd: int) -> Path:
    return Path(run_dir) / "students" / arm / f"round_{rnd}"


def load_student_at(ckpt_run_dir: str | None, spec: str) -> Student:
    """The student a train step left (a trainer output folder), or the initial one when None."""
    if ckpt_run_dir is None:
        return Student.load(spec, device())
    from mirror_core.students.checkpoints import LAST, load_for_inference

    model, tok, _ = load_for_inference(ckpt_run_dir, device(), which=LAST)
    return Student(model, tok, spec)


# ---------------------------------------------------------------- teacher calls

@dataclass
class Reply:
    call_id: int | None
    text: str
    status: str
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"


class Teachers:
    """The loop's teachers and one call engine (request cache, retries, cost ledger) for the whole run."""

    def __init__(self, conn: sqlite3.Connection, run_id: int, specs: Sequence[str], *,
                 should_stop: Callable[[], bool] = lambda: False, log: Callable[[str], None] = print,
                 budget_usd: float | None = None):
        from mirror_core.generation.calls import CallEngine
        from mirror_core.teachers.registry import make_teacher

        if not specs:
            raise LoopError("Give at least one teacher (--teacher SPEC).")
        self.conn, self.run_id = conn, run_id
        self.by_spec = {}
        for spec in specs:
            t = make_teacher(spec)
            self.by_spec[t.spec] = t
        self.specs = list(self.by_spec)
        self.engine = CallEngine(conn, run_id, budget_usd=budget_usd, should_stop=should_stop, log=log)

    @property
    def cost_usd(self) -> float:
        return float(self.engine.spent)

    def ask(self, spec: str, prompts: Sequence[str], *, purpose: str, template: tuple[str, int],
            metas: Sequence[dict] | None = None, max_tokens: int = 512, system: str | None = None,
            temperature: float = 0.0) -> list[Reply]:
        """One user message per prompt to teacher `spec`; replies in the same order. Cached: a prompt asked
        before (by this run or any other) is answered from `teacher_calls` without being sent again."""
        from mirror_core.generation.calls import Call
        from mirror_core.jobs import StopRequested
        from mirror_core.teachers.base import GenParams, TeacherRequest

        teacher = self.by_spec[spec]
        calls = []
        for i, p in enumerate(prompts):
            messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": p}]
            meta = dict(metas[i]) if metas else {}
            meta["purpose"] = purpose
            req = TeacherRequest(messages=messages, params=GenParams(temperature=temperature, max_tokens=max_tokens),
                                 meta=meta)
            calls.append(Call(teacher, req, template[0], template[1], purpose, tag=i))
        got: dict[int, dict] = {}
        stats = self.engine.run(calls, lambda c, row: got.__setitem__(c.tag, row))
        if stats.stopped:
            raise StopRequested("stop requested while waiting for the teacher")
        out = []
        for i in range(len(prompts)):
            row = got.get(i)
            if row is None:
                out.append(Reply(None, "", "error", "no answer recorded"))
            else:
                out.append(Reply(row["id"], row["response"] or "", row["status"], row.get("error")))
        return out


# ---------------------------------------------------------------- training through the trainer

class TrainReporter:
    """What `training.job.train_in_process` reports to: log lines into the loop's log, stop requests from the loop's job;
    its per-step metrics and progress stay out of the loop's own progress bar."""

    def __init__(self, ctx, prefix: str):
        self.ctx, self.prefix = ctx, prefix

    def log(self, msg: str) -> None:
        self.ctx.log(f"{self.prefix}: {msg}")

    def progress(self, done, total=None, note=None, cost_usd=None) -> None:
        pass

    def metric(self, step: int, **values) -> None:
        pass

    def should_stop(self) -> bool:
        return self.ctx.should_stop()

    def check_stop(self) -> None:
        self.ctx.check_stop()


def train_items(ctx, items: list[dict], *, student: str, out_dir: Path, tasks: list[str], epochs: float,
                max_steps: int = 0, seed: int = 0) -> Student:
    """Fine-tune `student` (a spec or a checkpoint folder) on snapshot-like items with the project's trainer,
    through the train stage's public face (`training.job`), never its loop; resumable (the trainer continues
    from out_dir/checkpoints/last). Returns the trained student."""
    from mirror_core.students.checkpoints import LAST, load_for_inference
    from mirror_core.training.config import TrainConfig
    from mirror_core.training.job import train_in_process

    if not items:
        raise LoopError("Nothing to train on this round.")
    cfg = TrainConfig(student=student, method="step-by-step", tasks=tasks, weights={t: 1.0 for t in tasks},
                      epochs=epochs, max_steps=max_steps, eval_every=0, patience=0, seq_len=512, seed=seed)
    train_in_process(cfg, items, TrainReporter(ctx, out_dir.name), out_dir, device=device())
    model, tok, _ = load_for_inference(out_dir, device(), which=LAST)
    return Student(model, tok, student)


def student_path(spec: str) -> str:
    """What the trainer takes as `student` for a loop spec: run:N becomes that run's checkpoint folder."""
    if spec.startswith("run:"):
        from mirror_core import config
        from mirror_core.students import checkpoints

        p = checkpoints.find(config.run_dir(int(spec[4:])))
        if p is not None:
            return str(p)
        raise LoopError(f"Train run {spec[4:]} has no checkpoint; finish or resume it first.")
    return spec


def item(example: Example, cot: str, answer: str | None = None, rationale_id: int | None = None,
         self_evals: list | None = None, question: str | None = None) -> dict:
    """One training item in the shape the trainer reads from snapshot_items."""
    return {"example_id": example.id, "rationale_id": rationale_id, "split": "train",
            "question": question or example.question, "answer": answer if answer is not None else example.answer,
            "cot": cot, "self_evals": self_evals or [], "choices": example.choices,
            "task_type": example.task_type}  # the CoT task reads the CoT's own answer by its task type
