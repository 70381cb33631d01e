"""Teacher as critic ("Small But Funny", PAPERS.md §5), as resumable steps under a call budget.

Per round:
  sample   the student samples k candidates per train question (rationales kind='student'); the most
           different pair by Jaccard distance is kept if its length ratio is inside the band   — no calls
  judge    the teacher picks the better of the pair in both orders; a `preferences` row per pair with
           `consistent` and both orders' prompts, answers and choices in `detail`             — 2 calls/pair
  dpo      DPO (dpo.py) on this round's consistent preferences for `dpo_epochs` epochs ("every K
           epochs": one feedback round per K epochs of preference training)
  winrate  the new student against the round's starting one on held-out questions, judged by the teacher
           in both orders: win / tie (inconsistent, or identical outputs: no call) / loss        — 2 calls/q

The round's budget share is (budget left) / (rounds left); the win-rate check takes up to half of it and
judging the rest, so every round gets both.
"""

from __future__ import annotations

from dataclasses import dataclass

from mirror_core import store
from mirror_core.loops import critic
from mirror_core.loops import dpo as D
from mirror_core.configs import config_from_dict, option
from mirror_core.loops import steps as S

JUDGE = ("critic-judge", 1)
JUDGE_PROMPT = """Two answers to the same question follow. Which one is better: correct, with sound and \
clear reasoning? Reply with the number of the better answer in square brackets, [1] or [2], then one \
sentence saying why.

Question: {question}

Answer 1:
{first}

Answer 2:
{second}"""


@dataclass
class CriticConfig(S.LoopConfig):
    budget: int = option(S.HELP["budget"] + "; each judged pair and each win-rate question costs 2", 20, lo=2)
    rounds: int = option(S.HELP["rounds"], 1, lo=1)
    k: int = option("candidates the student samples per question", 6, lo=2)
    pool: int = option("train questions sampled per round", 8, lo=1)
    band: list[float] = option("a candidate pair is judged only when its length ratio is within low..high "
                               "(0 < low <= 1 <= high)", default_factory=lambda: list(critic.DEFAULT_BAND))
    dpo_epochs: int = option("K: epochs of DPO on each round's consistent preferences (one feedback round per "
                             "K epochs)", 2, lo=1)
    beta: float = S.more_than_zero("DPO β: how strongly the student is held to the round's starting one", 0.1)
    lr: float = S.more_than_zero("DPO learning rate", 5e-5)
    winrate_limit: int = option("held-out questions on which the new student meets the round's starting one",
                                8)
    max_new_tokens: int = option(S.HELP["max_new_tokens"], 64, lo=1)
    teacher_max_tokens: int = option(S.HELP["teacher_max_tokens"], 256, lo=1)
    seed: int = option(S.HELP["seed"], 0)

    @classmethod
    def from_dict(cls, d: dict) -> "CriticConfig":
        cfg = config_from_dict(cls, d, label="critic", error=S.LoopError, ignore=("loop",))
        if not cfg.teachers:
            raise S.LoopError("The critic loop needs a teacher (--teacher SPEC).")
        if cfg.k < 2:
            raise S.LoopError("k must be at least 2 candidates per question.")
        if cfg.budget < 2 or cfg.rounds < 1 or cfg.pool < 1:
            raise S.LoopError("budget must be at least 2 calls, rounds and pool at least 1.")
        if len(cfg.band) != 2:
            raise S.LoopError(f"band is two numbers, low and high (e.g. [0.8, 1.2]), got {cfg.band}.")
        lo, hi = cfg.band
        if not 0 < lo <= 1 <= hi:
            raise S.LoopError(f"band must satisfy 0 < low <= 1 <= high, got {cfg.band}.")
        return cfg


def run(ctx, cfg: CriticConfig) -> dict:
    conn, run_id = ctx.conn, ctx.run_id
    ds = S.dataset_id(conn, cfg.dataset)
    train_pool = S.examples(conn, ds, "train")
    if not train_pool:
        raise S.LoopError(f"Dataset '{cfg.dataset}' has no train split to sample candidates on.")
    by_id = {e.id: e for e in train_pool}
    eval_split, eval_set = S.eval_examples(conn, ds, cfg.winrate_limit)
    teachers = S.Teachers(conn, run_id, cfg.teachers[:1], should_stop=ctx.should_stop, log=ctx.log)
    judge = teachers.specs[0]
    total_steps = cfg.rounds * 4
    done = [0]

    def tick(note):
        done[0] += 1
        ctx.progress(done[0], total_steps, note, teachers.cost_usd)

    ckpt = None
    for rnd in range(1, cfg.rounds + 1):
        ctx.check_stop()
        share = (cfg.budget - S.calls_spent(conn, run_id)) // (cfg.rounds - rnd + 1)
        # ---- sample
        smp = S.step_record(conn, run_id, rnd, "sample")
        if smp is None:
            if share < 2:
                ctx.log("budget spent; stopping")
                break
            start = ((rnd - 1) * cfg.pool) % len(train_pool)
            pool = (train_pool[start:] + train_pool[:start])[:cfg.pool]
            student = S.load_student_at(ckpt, cfg.student)
            texts = student.generate([e.cot_prompt() for e in pool], samples=cfg.k,
                                     max_new_tokens=cfg.max_new_tokens, seed=cfg.seed * 1000 + rnd)
            smp = _sample(ctx, pool, texts, cfg, rnd, share)
        tick(f"r{rnd} sample")
        # ---- judge
        jd = S.step_record(conn, run_id, rnd, "judge")
        if jd is None:
            jd = _judge(ctx, teachers, judge, smp, by_id, cfg, rnd)
        tick(f"r{rnd} judge")
        # ---- dpo
        dp = S.step_record(conn, run_id, rnd, "dpo")
        if dp is None:
            dp = _dpo(ctx, ckpt, jd, by_id, cfg, rnd)
        old_ckpt, ckpt = ckpt, dp["student_dir"]
        tick(f"r{rnd} dpo")
        # ---- win rate of the new student against the round's starting one
        if S.step_record(conn, run_id, rnd, "winrate") is None:
            _winrate(ctx, teachers, judge, old_ckpt, ckpt, eval_set, eval_split, cfg, rnd, smp["winrate_calls"])
        tick(f"r{rnd} winrate")
    return summary(conn, run_id)


def _sample(ctx, pool, texts, cfg: CriticConfig, rnd: int, share: int) -> dict:
    winrate_calls = min(2 * cfg.winrate_limit, (share // 2) // 2 * 2)
    max_pairs = (share - winrate_calls) // 2
    questions = []
    with store.transaction(ctx.conn):
        for e, cands in zip(pool, texts):
            ids = [S.insert_rationale(ctx.conn, example=e, kind="student", author=f"run:{ctx.run_id}", text=t,
                                      run_id=ctx.run_id, sample_index=i) for i, t in enumerate(cands)]
            q = {"example_id": e.id, "rationale_ids": ids}
            pair = critic.most_different_pair(cands)
            if pair is None:
                q.update(kept=False, reason="all candidates identical")
            else:
                i, j, dist = pair
                ratio = critic.length_ratio(cands[i], cands[j])
                q.update(a=i, b=j, distance=round(dist, 4), length_ratio=round(ratio, 4) if ratio != float("inf") else None)
                if not critic.within_band(cands[i], cands[j], tuple(cfg.band)):
                    q.update(kept=False, reason=f"length ratio outside {cfg.band[0]}–{cfg.band[1]}")
                elif sum(x.get("kept", False) for x in questions) >= max_pairs:
                    q.update(kept=False, reason="over this round's call budget")
                else:
                    q.update(kept=True, reason="")
            questions.append(q)
        rec = {"k": cfg.k, "band": cfg.band, "questions": questions, "max_pairs": max_pairs,
               "winrate_calls": winrate_calls, "share": share}
        S.write_step(ctx.conn, ctx.run_id, rnd, "sample", rec)
    return rec


def _texts(conn, ids) -> dict[int, str]:
    return {r["id"]: r["text"] for r in conn.execute(
        f"SELECT id, text FROM rationales WHERE id IN ({','.join('?' * len(ids)) or 'NULL'})", list(ids))}


def _judge_pairs(teachers, judge, items, cfg) -> list[tuple[critic.Judgment, list]]:
    """items: (example, text_a, text_b). Both orders per item; returns (judgment, [reply_ab, reply_ba])."""
    prompts, metas = [], []
    for e, a, b in items:
        for first, second in ((a, b), (b, a)):
            prompts.append(JUDGE_PROMPT.format(question=e.question_text(), first=first, second=second))
            metas.append({"gold": e.answer, "task_type": e.task_type, "example_id": e.id})
    replies = teachers.ask(judge, prompts, purpose="judge", template=JUDGE, metas=metas,
                           max_tokens=cfg.teacher_max_tokens) if prompts else []
    out = []
    for n in range(len(items)):
        ab, ba = replies[2 * n], replies[2 * n + 1]
        j = critic.combine_orders(critic.parse_choice(ab.text) if ab.ok else None,
                                  critic.parse_choice(ba.text) if ba.ok else None)
        out.append((j, [ab, ba]))
    return out


def _judge(ctx, teachers, judge, smp, by_id, cfg, rnd) -> dict:
    conn = ctx.conn
    kept = [q for q in smp["questions"] if q.get("kept")]
    texts = _texts(conn, [q["rationale_ids"][q[s]] for q in kept for s in ("a", "b")])
    items = [(by_id[q["example_id"]], texts[q["rationale_ids"][q["a"]]], texts[q["rationale_ids"][q["b"]]])
             for q in kept]
    results = _judge_pairs(teachers, judge, items, cfg)
    out = []
    with store.transaction(conn):
        for q, (e, a, b), (j, (ab, ba)) in zip(kept, items, results):
            chosen, rejected = (b, a) if j.winner == "b" else (a, b)
            detail = {"a_rationale_id": q["rationale_ids"][q["a"]], "b_rationale_id": q["rationale_ids"][q["b"]],
                      "distance": q["distance"], "length_ratio": q["length_ratio"], **j.as_dict(),
                      "order_ab": {"call_id": ab.call_id, "status": ab.status, "reply": ab.text},
                      "order_ba": {"call_id": ba.call_id, "status": ba.status, "reply": ba.text}}
            row = conn.execute("SELECT id FROM preferences WHERE run_id = ? AND example_id = ? AND judge = ? AND"
                               " json_extract(detail, '$.a_rationale_id') = ?",
                               (ctx.run_id, e.id, judge, detail["a_rationale_id"])).fetchone()
            if row is None:
                cur = conn.execute("INSERT INTO preferences (example_id, run_id, judge, chosen, rejected, consistent,"
                                   " detail, created_at) VALUES (?,?,?,?,?,?,?,?)",
                                   (e.id, ctx.run_id, judge, chosen, rejected, int(j.consistent),
                                    store.dumps(detail), store.now()))
                pid = cur.lastrowid
            else:
                pid = row["id"]
            out.append({"example_id": e.id, "preference_id": pid, **j.as_dict()})
        rec = {"judge": judge, "pairs": out, "consistent": sum(o["consistent"] for o in out)}
        S.write_step(conn, ctx.run_id, rnd, "judge", rec, calls=2 * len(items))
    return rec


def _dpo(ctx, ckpt, jd, by_id, cfg, rnd) -> dict:
    conn = ctx.conn
    ids = [p["preference_id"] for p in jd["pairs"] if p["consistent"]]
    rows = conn.execute(f"SELECT example_id, chosen, rejected FROM preferences WHERE id IN "
                        f"({','.join('?' * len(ids)) or 'NULL'}) ORDER BY id", ids).fetchall()
    pairs = [D.DPOPair(by_id[r["example_id"]].cot_prompt(), r["chosen"], r["rejected"]) for r in rows]
    if not pairs:
        rec = {"pairs": 0, "student_dir": ckpt, "note": "no consistent preference this round; student unchanged"}
    else:
        student = S.load_student_at(ckpt, cfg.student)
        res = D.train_dpo(student.model, student.tokenizer, pairs, epochs=cfg.dpo_epochs, lr=cfg.lr, beta=cfg.beta,
                          seed=cfg.seed + rnd)
        out = S.round_dir(ctx.run_dir, "critic", rnd)
        student.save(out, {"dpo_round": rnd})
        rec = {"pairs": len(pairs), "steps": res.steps, "loss_first": res.losses[0], "loss_last": res.losses[-1],
               "margin_last": res.reward_margins[-1], "student_dir": str(out)}
        for i, (l, m) in enumerate(zip(res.losses, res.reward_margins)):
            ctx.metric(rnd * 10_000 + i, **{"dpo/loss": l, "dpo/margin": m})
    with store.transaction(conn):
        S.write_step(conn, ctx.run_id, rnd, "dpo", rec)
    return rec


def _winrate(ctx, teachers, judge, old_ckpt, new_ckpt, eval_set, split, cfg, rnd, calls_allowed) -> dict:
    n = min(len(eval_set), calls_allowed // 2)
    exs = eval_set[:n]
    old = S.load_student_at(old_ckpt, cfg.student).generate([e.cot_prompt() for e in exs], max_new_tokens=cfg.max_new_tokens)
    new = S.load_student_at(new_ckpt, cfg.student).generate([e.cot_prompt() for e in exs], max_new_tokens=cfg.max_new_tokens)
    differ = [(e, nw[0], od[0]) for e, nw, od in zip(exs, new, old) if nw[0].strip() != od[0].strip()]
    results = _judge_pairs(teachers, judge, differ, cfg)
    per = []
    wins = ties = losses = 0
    it = iter(results)
    for e, nw, od in zip(exs, new, old):
        if nw[0].strip() == od[0].strip():
            ties += 1
            per.append({"example_id": e.id, "outcome": "tie", "why": "identical outputs"})
            continue
        j, (ab, ba) = next(it)
        outcome = "win" if j.winner == "a" else "loss" if j.winner == "b" else "tie"
        wins += outcome == "win"
        losses += outcome == "loss"
        ties += outcome == "tie"
        per.append({"example_id": e.id, "outcome": outcome, **j.as_dict(), "new": nw[0], "old": od[0],
                    "order_ab_call": ab.call_id, "order_ba_call": ba.call_id})
    rec = {"split": split, "n": n, "wins": wins, "ties": ties, "losses": losses,
           "win_rate": wins / n if n else None, "win_tie_rate": (wins + ties) / n if n else None, "per_example": per}
    with store.transaction(ctx.conn):
        S.write_step(ctx.conn, ctx.run_id, rnd, "winrate", rec, calls=2 * len(differ))
    ctx.log(f"round {rnd}: new vs old student on {n} {split} question(s): {wins} win, {ties} tie, {losses} loss")
    return rec


def summary(conn, run_id: int) -> dict:
    rounds = []
    for row in S.rounds(conn, run_id):
        if row["step"] == "winrate":
            d = row["decision"]
            rounds.append({"round": row["round"], "win_rate": d["win_rate"], "win_tie_rate": d["win_tie_rate"],
                           "n": d["n"]})
    prefs = conn.execute("SELECT COUNT(*), COALESCE(SUM(consistent), 0) FROM preferences WHERE run_id = ?",
                         (run_id,)).fetchone()
    return {"loop": "critic", "winrate": rounds, "preferences": prefs[0], "consistent": prefs[1],
            "calls": S.calls_spent(conn, run_id)}
