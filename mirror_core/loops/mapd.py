"""MAPD / FAIR, mistake-aware peer-review distillation (PAPERS.md §4), as resumable steps under a call budget.

Per round:
  mine       the current student answers train questions (greedy CoT); the wrong ones are its mistakes
             (rationales kind='student'); as many are kept as the budget pays for in full
  feedback   each teacher explains the student's mistake, given the gold answer as a hint
             (kind='feedback', parent_id = the student's rationale)                  — T calls per mistake
  rationale  each teacher writes its own rationale, gold answer as a hint (kind='cot') — T calls
  review     every OTHER teacher scores it 1–5 in square brackets (`reviews` rows)  — T(T−1) calls
  accept     peer_review.decide: mean of valid peer scores > threshold → accepted, else rejected with
             the reason in `rationales.status_reason`                             — no calls
  train      loss = α·feedback-SFT + (1−α)·rationale-SFT. The trainer weights tasks within one run but
             builds every task from every item, so the two parts run as two phases from the current
             student: feedback as the critique task (input: question + the student's wrong reasoning),
             then accepted rationales as the CoT task; α splits the epochs between them (α = 0.5: equal).
  eval       greedy CoT accuracy on the held-out split

Replayed teachers (`replay:FILE`, a file that also holds "feedback" and "reviews" per question) take
part like live ones: every request carries the question's id (`ext_id`) and, for a review, the author of
the rationale under review, and a score given as data is stored as given.
"""

from __future__ import annotations

from dataclasses import dataclass

from mirror_core import store
from mirror_core.configs import config_from_dict, option
from mirror_core.loops import peer_review
from mirror_core.loops import steps as S

FEEDBACK = ("mapd-feedback", 1)
RATIONALE = ("mapd-rationale", 1)
REVIEW = ("mapd-review", 1)
FEEDBACK_PROMPT = """A student got this question wrong. The correct answer is {gold}.

Question: {question}

Student's solution:
{student}

Explain where the student's reasoning goes wrong and how to reach the correct answer, step by step, \
ending with the line "The answer is {gold}." """
RATIONALE_PROMPT = """Solve the question step by step. The correct answer is {gold}; write the reasoning that \
leads to it, one step per line, ending with the line "The answer is {gold}."

Question: {question}"""
REVIEW_PROMPT = """Score another teacher's solution to the question below from 1 (wrong or useless) to 5 \
(correct, clear and complete). The correct answer is {gold}. Give one or two sentences of justification, \
then the score in square brackets, e.g. [4].

Question: {question}

Solution to score:
{rationale}"""


@dataclass
class MapdConfig(S.LoopConfig):
    budget: int = option(S.HELP["budget"] + "; a mistake costs T feedbacks, T rationales and T(T−1) reviews "
                         "for T teachers", 24, lo=1)
    rounds: int = option(S.HELP["rounds"], 1, lo=1)
    pool: int = option(S.HELP["pool"] + " (its wrong answers are the mistakes)", 16, lo=1)
    threshold: float = option("a teacher's rationale is accepted when the mean of its valid peer scores (1–5) "
                              "is above this", peer_review.DEFAULT_THRESHOLD)
    alpha: float = option("α: loss = α·feedback-SFT + (1 − α)·rationale-SFT (it splits the epochs between the two)",
                          0.5, lo=0, hi=1)
    eval_limit: int = option(S.HELP["eval_limit"], 16)
    max_new_tokens: int = option(S.HELP["max_new_tokens"], 64, lo=1)
    train_epochs: float = S.more_than_zero(S.HELP["train_epochs"], 2.0)
    train_steps: int = option(S.HELP["train_steps"], 0, lo=0)
    teacher_max_tokens: int = option(S.HELP["teacher_max_tokens"], 512, lo=1)
    seed: int = option(S.HELP["seed"], 0)

    @classmethod
    def from_dict(cls, d: dict) -> "MapdConfig":
        cfg = config_from_dict(cls, d, label="MAPD", error=S.LoopError, ignore=("loop",))
        if not cfg.teachers or len(set(cfg.teachers)) < 2:
            raise S.LoopError("MAPD's peer review needs two or more different teachers "
                              "(--teacher A --teacher B).")
        if not 0.0 <= cfg.alpha <= 1.0:
            raise S.LoopError(f"alpha must be within 0..1, got {cfg.alpha}.")
        if cfg.budget < 1 or cfg.rounds < 1 or cfg.pool < 1:
            raise S.LoopError("budget, rounds and pool must be at least 1.")
        return cfg


def calls_per_mistake(n_teachers: int) -> int:
    return n_teachers * 2 + n_teachers * (n_teachers - 1)


def run(ctx, cfg: MapdConfig) -> dict:
    conn, run_id = ctx.conn, ctx.run_id
    ds = S.dataset_id(conn, cfg.dataset)
    train_pool = S.examples(conn, ds, "train")
    if not train_pool:
        raise S.LoopError(f"Dataset '{cfg.dataset}' has no train split to mine mistakes on.")
    by_id = {e.id: e for e in train_pool}
    ext_ids = _ext_ids(conn, ds)
    eval_split, eval_set = S.eval_examples(conn, ds, cfg.eval_limit)
    teachers = S.Teachers(conn, run_id, cfg.teachers, should_stop=ctx.should_stop, log=ctx.log)
    T = teachers.specs
    per = calls_per_mistake(len(T))
    total_steps = 1 + cfg.rounds * 7
    done = [0]

    def tick(note):
        done[0] += 1
        ctx.progress(done[0], total_steps, note, teachers.cost_usd)

    if S.step_record(conn, run_id, 0, "eval") is None:
        acc, preds = S.load_student_at(None, cfg.student).accuracy(eval_set, cfg.max_new_tokens)
        with store.transaction(conn):
            S.write_step(conn, run_id, 0, "eval", {"split": eval_split, "accuracy": acc, "calls": 0,
                                                   "predictions": preds})
    tick("initial eval")
    ckpt = None
    stopped = None
    for rnd in range(1, cfg.rounds + 1):
        ctx.check_stop()
        # ---- mine
        mine = S.step_record(conn, run_id, rnd, "mine")
        if mine is None:
            left = cfg.budget - S.calls_spent(conn, run_id)
            if left < per:
                # the run still succeeds; the result says why its later steps were not done
                stopped = (f"rounds {rnd}–{cfg.rounds} not run: the budget left ({left} of {cfg.budget} calls) pays "
                           f"for no mistake ({per} calls each with {len(T)} teachers)")
                ctx.log(stopped)
                ctx.progress(done[0], total_steps, stopped, teachers.cost_usd)
                break
            seen = set()
            for r in range(1, rnd):
                seen.update(m["example_id"] for m in (S.step_record(conn, run_id, r, "mine") or {}).get("answered", []))
            pool = [e for e in train_pool if e.id not in seen][:cfg.pool]
            student = S.load_student_at(ckpt, cfg.student)
            texts = student.generate([e.cot_prompt() for e in pool], max_new_tokens=cfg.max_new_tokens)
            answered, mistakes = [], []
            for e, t in zip(pool, texts):
                pred = e.read_answer(t[0])
                ok = e.grade(pred)  # 1, 0, or None when the gold does not parse
                answered.append({"example_id": e.id, "pred": pred, "correct": ok})
                if ok == 0:  # an ungradable answer is not known to be a mistake: no teacher is paid to fix it
                    mistakes.append((e, t[0], pred))
            take = mistakes[:left // per]
            with store.transaction(conn):
                kept = [{"example_id": e.id, "pred": pred, "rationale_id": S.insert_rationale(
                    conn, example=e, kind="student", author=f"run:{run_id}", text=t, run_id=run_id)}
                    for e, t, pred in take]
                mine = {"answered": answered, "n_wrong": len(mistakes), "mistakes": kept,
                        "calls_per_mistake": per, "budget_left": left}
                S.write_step(conn, run_id, rnd, "mine", mine)
            ctx.log(f"round {rnd}: {len(mistakes)} mistake(s) of {len(pool)}; {len(kept)} within the budget")
        tick(f"r{rnd} mine")
        mistakes = mine["mistakes"]
        student_text = {r["id"]: r["text"] for r in conn.execute(
            f"SELECT id, text FROM rationales WHERE id IN ({','.join('?' * len(mistakes)) or 'NULL'})",
            [m["rationale_id"] for m in mistakes])}
        # ---- feedback and own rationales: one call per (teacher, mistake) each
        for step, kind, template, prompt in (("feedback", "feedback", FEEDBACK, FEEDBACK_PROMPT),
                                             ("rationale", "cot", RATIONALE, RATIONALE_PROMPT)):
            if S.step_record(conn, run_id, rnd, step) is None:
                _write_per_teacher(ctx, teachers, mistakes, by_id, student_text, step, kind, template, prompt,
                                   cfg, rnd, ext_ids)
            tick(f"r{rnd} {step}")
        rats = S.step_record(conn, run_id, rnd, "rationale")["written"]
        # ---- peer review
        if S.step_record(conn, run_id, rnd, "review") is None:
            _review(ctx, teachers, rats, by_id, cfg, rnd, ext_ids)
        tick(f"r{rnd} review")
        # ---- accept
        acc_rec = S.step_record(conn, run_id, rnd, "accept")
        if acc_rec is None:
            acc_rec = _accept(conn, run_id, rats, cfg, rnd)
        tick(f"r{rnd} accept")
        # ---- train
        tr = S.step_record(conn, run_id, rnd, "train")
        if tr is None:
            tr = _train(ctx, conn, run_id, cfg, rnd, ckpt, mistakes, acc_rec, by_id, student_text)
        ckpt = tr["student_dir"]
        tick(f"r{rnd} train")
        # ---- eval
        if S.step_record(conn, run_id, rnd, "eval") is None:
            acc, preds = S.load_student_at(ckpt, cfg.student).accuracy(eval_set, cfg.max_new_tokens)
            with store.transaction(conn):
                S.write_step(conn, run_id, rnd, "eval", {"split": eval_split, "accuracy": acc,
                                                         "calls": S.calls_spent(conn, run_id), "predictions": preds})
            ctx.log(f"round {rnd}: {eval_split} accuracy {acc:.3f}")
        tick(f"r{rnd} eval")
    return summary(conn, run_id, stopped=stopped)


def _ext_ids(conn, ds: int) -> dict[int, str]:
    """Example id -> the dataset's own question id, by which a replayed teacher finds its outputs."""
    return {r[0]: r[1] for r in conn.execute("SELECT id, ext_id FROM examples WHERE dataset_id = ?", (ds,))}


def _placeholders(ids: list) -> str:
    return ",".join("?" * len(ids)) or "NULL"


def _given_score(conn, call_id: int | None) -> int | None:
    """A score a replayed teacher gave as data (its file's "reviews"), else None: the text is parsed."""
    if not call_id:
        return None
    row = conn.execute("SELECT raw FROM teacher_calls WHERE id = ?", (call_id,)).fetchone()
    raw = store.loads(row["raw"]) if row and row["raw"] else None
    review = ((raw or {}).get("response") or {}).get("review") if isinstance(raw, dict) else None
    score = review.get("score") if isinstance(review, dict) else None
    return int(score) if isinstance(score, (int, float)) and 1 <= score <= 5 else None


def _write_per_teacher(ctx, teachers, mistakes, by_id, student_text, step, kind, template, prompt, cfg, rnd,
                       ext_ids=None):
    conn = ctx.conn
    written = []
    replies_by_teacher = {}
    for spec in teachers.specs:
        prompts, metas = [], []
        for m in mistakes:
            e = by_id[m["example_id"]]
            prompts.append(prompt.format(gold=e.answer, question=e.question_text(),
                                         student=student_text[m["rationale_id"]]))
            metas.append({"gold": e.answer, "task_type": e.task_type, "choices": e.choices, "example_id": e.id,
                          "ext_id": (ext_ids or {}).get(e.id)})
        replies_by_teacher[spec] = teachers.ask(spec, prompts, purpose=kind, template=template, metas=metas,
                                                max_tokens=cfg.teacher_max_tokens) if prompts else []
    with store.transaction(conn):
        for spec, replies in replies_by_teacher.items():
            for m, reply in zip(mistakes, replies):
                e = by_id[m["example_id"]]
                entry = {"example_id": e.id, "author": spec, "call_id": reply.call_id, "status": reply.status}
                if reply.status in ("ok", "truncated") and reply.text.strip():
                    entry["rationale_id"] = S.insert_rationale(
                        conn, example=e, kind=kind, author=spec, text=reply.text, run_id=ctx.run_id,
                        call_id=reply.call_id, parent_id=m["rationale_id"] if kind == "feedback" else None)
                else:
                    entry.update(rationale_id=None, error=reply.error or "empty reply")
                written.append(entry)
        S.write_step(conn, ctx.run_id, rnd, step, {"written": written},
                     calls=len(mistakes) * len(teachers.specs))


def _review(ctx, teachers, rats, by_id, cfg, rnd, ext_ids=None):
    conn = ctx.conn
    rat_ids = [r["rationale_id"] for r in rats if r["rationale_id"]]
    texts = {r["id"]: r["text"] for r in conn.execute(
        f"SELECT id, text FROM rationales WHERE id IN ({_placeholders(rat_ids)})", rat_ids)}
    jobs_by_reviewer = {spec: [] for spec in teachers.specs}
    for r in rats:
        for spec in teachers.specs:
            if spec != r["author"] and r["rationale_id"]:
                jobs_by_reviewer[spec].append(r)
    replies = {}
    for spec, todo in jobs_by_reviewer.items():
        prompts = [REVIEW_PROMPT.format(gold=by_id[r["example_id"]].answer, question=by_id[r["example_id"]].question_text(),
                                        rationale=texts[r["rationale_id"]]) for r in todo]
        metas = [{"gold": by_id[r["example_id"]].answer, "task_type": by_id[r["example_id"]].task_type,
                  "example_id": r["example_id"], "rationale_id": r["rationale_id"], "author": r["author"],
                  "ext_id": (ext_ids or {}).get(r["example_id"])} for r in todo]
        got = teachers.ask(spec, prompts, purpose="review", template=REVIEW, metas=metas,
                           max_tokens=cfg.teacher_max_tokens) if prompts else []
        replies[spec] = list(zip(todo, got))
    out = []
    with store.transaction(conn):
        for spec, pairs in replies.items():
            for r, reply in pairs:
                score = None
                if reply.status in ("ok", "truncated"):
                    score = _given_score(conn, reply.call_id) or peer_review.parse_score(reply.text)
                exists = conn.execute("SELECT id FROM reviews WHERE call_id = ? AND rationale_id = ?",
                                      (reply.call_id, r["rationale_id"])).fetchone() if reply.call_id else None
                if not exists:
                    conn.execute("INSERT INTO reviews (rationale_id, reviewer, call_id, score, text, parse_status,"
                                 " created_at) VALUES (?,?,?,?,?,?,?)",
                                 (r["rationale_id"], spec, reply.call_id, score, reply.text,
                                  "ok" if score is not None else "parse_error", store.now()))
                out.append({"rationale_id": r["rationale_id"], "author": r["author"], "reviewer": spec,
                            "score": score, "call_id": reply.call_id, "status": reply.status})
        S.write_step(conn, ctx.run_id, rnd, "review", {"reviews": out}, calls=sum(len(p) for p in replies.values()))


def _accept(conn, run_id, rats, cfg, rnd) -> dict:
    per_question: dict[int, dict] = {}
    for r in rats:
        q = per_question.setdefault(r["example_id"], {"example_id": r["example_id"], "matrix": {}, "decisions": {}})
        if not r["rationale_id"]:
            q["decisions"][r["author"]] = {"accepted": False, "mean": None, "n_valid": 0,
                                           "reason": f"no rationale: the teacher's call ended '{r['status']}'",
                                           "rationale_id": None}
            continue
        scores = {row["reviewer"]: row["score"] for row in conn.execute(
            "SELECT reviewer, score FROM reviews WHERE rationale_id = ? ORDER BY id", (r["rationale_id"],))}
        d = peer_review.decide(r["author"], scores, cfg.threshold)
        q["matrix"][r["author"]] = scores
        q["decisions"][r["author"]] = {**d.as_dict(), "rationale_id": r["rationale_id"]}
    with store.transaction(conn):
        for q in per_question.values():
            for author, d in q["decisions"].items():
                if d["rationale_id"]:
                    conn.execute("UPDATE rationales SET status = ?, status_reason = ?, updated_at = ? WHERE id = ?",
                                 ("accepted" if d["accepted"] else "rejected", "peer review: " + d["reason"],
                                  store.now(), d["rationale_id"]))
        rec = {"threshold": cfg.threshold, "questions": list(per_question.values()),
               "accepted": sum(d["accepted"] for q in per_question.values() for d in q["decisions"].values()),
               "rejected": sum(not d["accepted"] for q in per_question.values() for d in q["decisions"].values())}
        S.write_step(conn, run_id, rnd, "accept", rec)
    return rec


def _train(ctx, conn, run_id, cfg, rnd, ckpt, mistakes, acc_rec, by_id, student_text) -> dict:
    fb = S.step_record(conn, run_id, rnd, "feedback")["written"]
    fb_ids = [f["rationale_id"] for f in fb if f["rationale_id"]]
    fb_text = {r["id"]: r["text"] for r in conn.execute(
        f"SELECT id, text FROM rationales WHERE id IN ({_placeholders(fb_ids)})", fb_ids)}
    parent = {m["example_id"]: m["rationale_id"] for m in mistakes}
    fb_items = [S.item(by_id[f["example_id"]], student_text[parent[f["example_id"]]], rationale_id=f["rationale_id"],
                       self_evals=[{"critique": fb_text[f["rationale_id"]], "verdict": "wrong", "confidence": 1.0}])
                for f in fb if f["rationale_id"]]
    accepted = [d["rationale_id"] for q in acc_rec["questions"] for d in q["decisions"].values() if d["accepted"]]
    rat_rows = conn.execute(f"SELECT id, example_id, text FROM rationales WHERE id IN "
                            f"({','.join('?' * len(accepted)) or 'NULL'})", accepted).fetchall()
    rat_items = [S.item(by_id[r["example_id"]], r["text"], rationale_id=r["id"]) for r in rat_rows]
    base = ckpt or S.student_path(cfg.student)
    phases = []
    if fb_items and cfg.alpha > 0:
        out = S.round_dir(ctx.run_dir, "mapd", rnd) / "feedback"
        S.train_items(ctx, fb_items, student=_trainer_student(base), out_dir=out, tasks=["critique"],
                      epochs=2 * cfg.alpha * cfg.train_epochs, max_steps=cfg.train_steps, seed=cfg.seed)
        phases.append({"phase": "feedback", "task": "critique", "items": len(fb_items), "dir": str(out)})
        base = str(out)
    if rat_items and cfg.alpha < 1:
        out = S.round_dir(ctx.run_dir, "mapd", rnd) / "rationale"
        S.train_items(ctx, rat_items, student=_trainer_student(base), out_dir=out, tasks=["cot"],
                      epochs=2 * (1 - cfg.alpha) * cfg.train_epochs, max_steps=cfg.train_steps, seed=cfg.seed)
        phases.append({"phase": "rationale", "task": "cot", "items": len(rat_items), "dir": str(out)})
        base = str(out)
    rec = {"alpha": cfg.alpha, "phases": phases, "student_dir": phases[-1]["dir"] if phases else ckpt,
           "feedback_items": len(fb_items), "rationale_items": len(rat_items)}
    with store.transaction(conn):
        S.write_step(conn, run_id, rnd, "train", rec)
    return rec


def _trainer_student(base: str) -> str:
    """A trainer output folder as the trainer's `student`: its last checkpoint folder."""
    from pathlib import Path

    from mirror_core.students import checkpoints

    last = checkpoints.find(base, checkpoints.LAST) if Path(base).is_dir() else None
    return str(last) if last is not None else base


def summary(conn, run_id: int, stopped: str | None = None) -> dict:
    """The run's result: accuracy curve, accepted/rejected counts, calls, and `not_done` — one sentence per
    thing the loop left undone and why (no mistake to learn from, mistakes over budget, failed teacher calls,
    reviews without a score, rounds cut by the budget), so "8/15" on a succeeded run has its reason."""
    curve, accepted, rejected = [], 0, 0
    for row in S.rounds(conn, run_id):
        d = row["decision"]
        if row["step"] == "eval":
            curve.append({"round": row["round"], "calls": d["calls"], "accuracy": d["accuracy"]})
        if row["step"] == "accept":
            accepted += d["accepted"]
            rejected += d["rejected"]
    return {"loop": "mapd", "curve": curve, "accepted": accepted, "rejected": rejected,
            "calls": S.calls_spent(conn, run_id), "not_done": not_done(conn, run_id) + ([stopped] if stopped else [])}


def not_done(conn, run_id: int) -> list[str]:
    """Why parts of each recorded round did nothing, read from the steps' decisions."""
    out, idle = [], set()
    for row in S.rounds(conn, run_id):
        d, rnd, step = row["decision"], row["round"], row["step"]
        if step == "mine":
            taken, wrong = len(d["mistakes"]), d["n_wrong"]
            if not wrong:
                idle.add(rnd)
                out.append(f"round {rnd}: skipped — the student made no mistake on {len(d['answered'])} train "
                           "question(s), so there was nothing to feed back, review or train on")
            elif taken < wrong:
                out.append(f"round {rnd}: {wrong - taken} of {wrong} mistake(s) skipped — the budget left "
                           f"({d['budget_left']} calls) paid for {taken} ({d['calls_per_mistake']} calls each)")
        elif step in ("feedback", "rationale"):
            failed = [w for w in d["written"] if not w.get("rationale_id")]
            if failed:
                first = failed[0]
                out.append(f"round {rnd}: {len(failed)} of {len(d['written'])} teacher {step} call(s) gave no text — "
                           f"{first['author']}: {first.get('error') or first['status']}")
        elif step == "review":
            bad = [r for r in d["reviews"] if r["score"] is None]
            if bad:
                out.append(f"round {rnd}: {len(bad)} of {len(d['reviews'])} review(s) gave no valid [1–5] score "
                           "(left out of the mean)")
        elif step == "train" and not d.get("phases") and rnd not in idle:
            out.append(f"round {rnd}: no training — no feedback written and no rationale accepted")
    return out
