"""ELAD, explanation-guided active distillation (PAPERS.md §3), as resumable steps under a call budget.

Two arms share the budget equally: `uncertainty` picks the B questions whose sampled explanations the
student is least sure of (uncertainty.py), `random` picks B at random (the control). Per arm and round:

  explain  the arm's current student writes `samples` explanations for each of `pool` unlabeled train
           questions it has not had revised yet (rationales kind='student'); each sample's per-step
           token entropy is measured
  select   score every question and take the top B (or B at random)             — no teacher calls
  revise   the teacher finds and corrects the flawed steps of the student's most uncertain explanation
           (rationales kind='revision', parent_id = that student rationale)     — B calls
  train    the initial student is fine-tuned on every revision this arm has so far (CoT task)
  eval     greedy CoT accuracy on the held-out split; (calls spent, accuracy) is a point of the plot

Round 0 measures the initial student once for both arms (0 calls).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from mirror_core.configs import config_from_dict, option
from mirror_core.loops import steps as S
from mirror_core.loops import uncertainty as U

TEMPLATE = ("elad-revise", 1)
PROMPT = """A student answered the question below step by step. Some of its steps may be wrong.
Check every step. Name each flawed step and say how to fix it, then write the whole corrected \
explanation, one step per line, ending with the line "The answer is X."

Question: {question}

Student's explanation:
{explanation}"""


@dataclass
class EladConfig(S.LoopConfig):
    budget: int = option(S.HELP["budget"] + "; split equally between the arms", 20, lo=1)
    rounds: int = option(S.HELP["rounds"], 2, lo=1)
    per_round: int | None = option("questions revised per arm and round (B); None: the arm's budget / rounds",
                                   None, lo=1)
    pool: int = option("unlabeled train questions the student explains per round", 16, lo=1)
    samples: int = option("sampled explanations per question (at least 2 are drawn: disagreement needs two)",
                          3, lo=1)
    weight: float = option("λ of the uncertainty score (1 − λ)·entropy + λ·answer disagreement", 0.5, lo=0, hi=1)
    control: bool = option("run the random-selection arm (the control) too", True)
    eval_limit: int = option(S.HELP["eval_limit"], 16)
    max_new_tokens: int = option(S.HELP["max_new_tokens"], 64, lo=1)
    train_epochs: float = S.more_than_zero(S.HELP["train_epochs"] + " (on every revision the arm has so far)", 2.0)
    train_steps: int = option(S.HELP["train_steps"], 0, lo=0)
    teacher_max_tokens: int = option(S.HELP["teacher_max_tokens"], 512, lo=1)
    seed: int = option(S.HELP["seed"], 0)

    @classmethod
    def from_dict(cls, d: dict) -> "EladConfig":
        cfg = config_from_dict(cls, d, label="ELAD", error=S.LoopError, ignore=("loop",))
        if not cfg.teachers:
            raise S.LoopError("ELAD needs a teacher (--teacher SPEC).")
        if cfg.budget < 1 or cfg.rounds < 1 or cfg.samples < 1 or cfg.pool < 1:
            raise S.LoopError("budget, rounds, samples and pool must be at least 1.")
        if cfg.samples < 2:
            cfg.samples = 2  # disagreement needs at least two samples
        return cfg


def arms(cfg: EladConfig) -> list[str]:
    return ["uncertainty", "random"] if cfg.control else ["uncertainty"]


def run(ctx, cfg: EladConfig) -> dict:
    conn, run_id = ctx.conn, ctx.run_id
    ds = S.dataset_id(conn, cfg.dataset)
    train_pool = S.examples(conn, ds, "train")
    if not train_pool:
        raise S.LoopError(f"Dataset '{cfg.dataset}' has no train split to draw unlabeled questions from.")
    by_id = {e.id: e for e in train_pool}
    eval_split, eval_set = S.eval_examples(conn, ds, cfg.eval_limit)
    teachers = S.Teachers(conn, run_id, cfg.teachers[:1], should_stop=ctx.should_stop, log=ctx.log)
    teacher = teachers.specs[0]
    arm_budget = cfg.budget // len(arms(cfg))
    per_round = cfg.per_round or max(1, arm_budget // cfg.rounds)
    total_steps = 1 + len(arms(cfg)) * cfg.rounds * 5
    done = [0]

    def tick(note):
        done[0] += 1
        ctx.progress(done[0], total_steps, note, teachers.cost_usd)

    # round 0: the initial student, once
    if S.step_record(conn, run_id, 0, "initial/eval") is None:
        acc, preds = S.load_student_at(None, cfg.student).accuracy(eval_set, cfg.max_new_tokens)
        with S.store.transaction(conn):
            S.write_step(conn, run_id, 0, "initial/eval", {"arm": "initial", "split": eval_split,
                                                           "accuracy": acc, "calls": 0, "predictions": preds})
        ctx.log(f"initial student: {eval_split} accuracy {acc:.3f}")
    tick("initial eval")

    for arm in arms(cfg):
        ckpt = None  # the arm's latest trained student (None: the initial one)
        for rnd in range(1, cfg.rounds + 1):
            ctx.check_stop()
            spent = S.calls_spent(conn, run_id, arm + "/")
            # ---- explain
            exp = S.step_record(conn, run_id, rnd, f"{arm}/explain")
            if exp is None:
                if spent >= arm_budget:
                    ctx.log(f"{arm}: budget of {arm_budget} calls spent; stopping this arm")
                    break
                taken = set()
                for r in range(1, rnd):
                    sel = S.step_record(conn, run_id, r, f"{arm}/select") or {}
                    taken.update(q["example_id"] for q in sel.get("selected", []))
                pool = [e for e in train_pool if e.id not in taken][:cfg.pool]
                student = S.load_student_at(ckpt, cfg.student)
                exp = _explain(ctx, student, pool, cfg, arm, rnd)
            tick(f"{arm} r{rnd} explain")
            # ---- select
            sel = S.step_record(conn, run_id, rnd, f"{arm}/select")
            if sel is None:
                b = max(0, min(per_round, arm_budget - spent))
                scores = [U.score_question(q["example_id"], q["step_entropies"], q["answers"], exp["vocab_size"],
                                           cfg.weight) for q in exp["questions"]]
                if arm == "uncertainty":
                    chosen = U.select_top(scores, b)
                else:
                    ids = U.select_random([s.example_id for s in scores], b, seed=cfg.seed * 1000 + rnd)
                    chosen = [next(s for s in scores if s.example_id == i) for i in ids]
                qmap = {q["example_id"]: q for q in exp["questions"]}
                sel = {"arm": arm, "budget_left": arm_budget - spent, "b": b,
                       "scores": sorted([s.as_dict() for s in scores], key=lambda d: -d["score"]),
                       "selected": [{**s.as_dict(), "rationale_id":
                                     qmap[s.example_id]["rationale_ids"][s.most_uncertain_sample]} for s in chosen]}
                with S.store.transaction(conn):
                    S.write_step(conn, run_id, rnd, f"{arm}/select", sel)
            tick(f"{arm} r{rnd} select")
            # ---- revise
            rev = S.step_record(conn, run_id, rnd, f"{arm}/revise")
            if rev is None:
                rev = _revise(ctx, teachers, teacher, sel, by_id, cfg, arm, rnd)
            tick(f"{arm} r{rnd} revise")
            # ---- train
            tr = S.step_record(conn, run_id, rnd, f"{arm}/train")
            if tr is None:
                items = []
                for r in range(1, rnd + 1):
                    for q in (S.step_record(conn, run_id, r, f"{arm}/revise") or {}).get("revisions", []):
                        if q.get("revision_id") and q.get("answer") is not None:
                            items.append(S.item(by_id[q["example_id"]], q["text"], q["answer"], q["revision_id"]))
                if items:
                    out = S.round_dir(ctx.run_dir, arm, rnd)
                    S.train_items(ctx, items, student=S.student_path(cfg.student), out_dir=out, tasks=["cot"],
                                  epochs=cfg.train_epochs, max_steps=cfg.train_steps, seed=cfg.seed)
                    tr = {"arm": arm, "items": len(items), "student_dir": str(out)}
                else:
                    tr = {"arm": arm, "items": 0, "student_dir": ckpt, "note": "no usable revision; student unchanged"}
                with S.store.transaction(conn):
                    S.write_step(conn, run_id, rnd, f"{arm}/train", tr)
            ckpt = tr["student_dir"]
            tick(f"{arm} r{rnd} train")
            # ---- eval
            ev = S.step_record(conn, run_id, rnd, f"{arm}/eval")
            if ev is None:
                acc, preds = S.load_student_at(ckpt, cfg.student).accuracy(eval_set, cfg.max_new_tokens)
                ev = {"arm": arm, "split": eval_split, "accuracy": acc,
                      "calls": S.calls_spent(conn, run_id, arm + "/"), "predictions": preds}
                with S.store.transaction(conn):
                    S.write_step(conn, run_id, rnd, f"{arm}/eval", ev)
                ctx.log(f"{arm} round {rnd}: {ev['calls']} calls, {eval_split} accuracy {acc:.3f}")
            tick(f"{arm} r{rnd} eval")
    return summary(conn, run_id)


def _explain(ctx, student: S.Student, pool, cfg: EladConfig, arm: str, rnd: int) -> dict:
    texts = student.generate([e.cot_prompt() for e in pool], samples=cfg.samples,
                             max_new_tokens=cfg.max_new_tokens, seed=cfg.seed * 1000 + rnd)
    questions = []
    for e, samples in zip(pool, texts):
        ents, answers = [], []
        for t in samples:
            starts, h = U.token_entropies(student.model, student.tokenizer, e.cot_prompt(), t)
            ents.append(U.step_entropies(t, starts, h))
            answers.append(e.read_answer(t))
        questions.append({"example_id": e.id, "texts": samples, "answers": answers, "step_entropies": ents})
    with S.store.transaction(ctx.conn):
        for q, e in zip(questions, pool):
            q["rationale_ids"] = [S.insert_rationale(ctx.conn, example=e, kind="student", author=f"run:{ctx.run_id}",
                                                     text=t, run_id=ctx.run_id, sample_index=i)
                                  for i, t in enumerate(q["texts"])]
        dec = {"arm": arm, "questions": questions, "vocab_size": len(student.tokenizer)}
        S.write_step(ctx.conn, ctx.run_id, rnd, f"{arm}/explain", dec)
    return dec


def _revise(ctx, teachers: S.Teachers, teacher: str, sel: dict, by_id, cfg: EladConfig, arm: str, rnd: int) -> dict:
    conn = ctx.conn
    picks = sel["selected"]
    rows = {r["id"]: r for r in conn.execute(
        f"SELECT id, text FROM rationales WHERE id IN ({','.join('?' * len(picks)) or 'NULL'})",
        [p["rationale_id"] for p in picks])}
    prompts, metas = [], []
    for p in picks:
        e = by_id[p["example_id"]]
        prompts.append(PROMPT.format(question=e.question_text(), explanation=rows[p["rationale_id"]]["text"]))
        metas.append({"gold": e.answer, "task_type": e.task_type, "choices": e.choices, "example_id": e.id})
    replies = teachers.ask(teacher, prompts, purpose="revision", template=TEMPLATE, metas=metas,
                           max_tokens=cfg.teacher_max_tokens) if prompts else []
    out = []
    with S.store.transaction(conn):
        for p, reply in zip(picks, replies):
            e = by_id[p["example_id"]]
            entry = {"example_id": e.id, "student_rationale_id": p["rationale_id"], "call_id": reply.call_id,
                     "status": reply.status}
            if reply.status in ("ok", "truncated") and reply.text.strip():
                rid = S.insert_rationale(conn, example=e, kind="revision", author=teacher, text=reply.text,
                                         run_id=ctx.run_id, call_id=reply.call_id, parent_id=p["rationale_id"])
                entry.update(revision_id=rid, text=reply.text, answer=e.read_answer(reply.text))
            else:
                entry.update(revision_id=None, error=reply.error or "empty reply")
            out.append(entry)
        dec = {"arm": arm, "teacher": teacher, "revisions": out}
        S.write_step(conn, ctx.run_id, rnd, f"{arm}/revise", dec, calls=len(prompts))
    return dec


def summary(conn, run_id: int) -> dict:
    """Accuracy against calls spent, per arm (the points of the page's plot)."""
    curve = {}
    init = S.step_record(conn, run_id, 0, "initial/eval")
    for row in S.rounds(conn, run_id):
        if row["step"].endswith("/eval") and row["round"] > 0:
            d = row["decision"]
            curve.setdefault(d["arm"], [{"round": 0, "calls": 0, "accuracy": init["accuracy"]}] if init else [])
            curve[d["arm"]].append({"round": row["round"], "calls": d["calls"], "accuracy": d["accuracy"]})
    return {"loop": "elad", "curve": curve, "calls": S.calls_spent(conn, run_id)}
