"""A deterministic fake teacher for tests and benchmarks (the keyless demo uses the real local model).

`fake:NAME` teachers differ by NAME. Each answer is a pure function of (NAME, messages, params): right
or wrong by a hash, using the gold the pipeline passes in `request.meta` (never sent to real teachers).
Now and then a CoT lacks its answer line and a self-evaluation lacks its verdict, so parse errors occur.
MIRROR_FAKE_LATENCY_S adds a simulated latency; MIRROR_FAKE_SERVED_LOG appends one line per request
served (tests count how often each request really went out).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time

from mirror_core.teachers.base import Completion, Teacher, TeacherRequest


def _unit(*parts) -> float:
    """A number in [0, 1) fixed by the parts."""
    h = hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).digest()
    return int.from_bytes(h[:8], "big") / 2**64


def _wrong(gold: str, task_type: str, choices, u: float) -> str:
    if task_type == "numeric":
        try:
            return str(int(float(gold)) + 1 + int(u * 5))
        except ValueError:
            return "0"
    if task_type == "multiple_choice":
        letters = [chr(65 + i) for i in range(len(choices or "ABCDE"))]
        others = [c for c in letters if c != gold] or ["A"]
        return others[int(u * len(others))]
    if task_type == "yes_no":
        return "no" if gold == "yes" else "yes"
    return "something else entirely"


class FakeTeacher(Teacher):
    provider = "fake"
    max_in_flight = 32
    requests_per_minute = None

    def __init__(self, name: str = "default", *, latency_s: float | None = None, skill: float | None = None):
        self.name = name
        self.model = name
        self.latency_s = float(os.environ.get("MIRROR_FAKE_LATENCY_S", 0) if latency_s is None else latency_s)
        # How often its CoTs are right: fixed per name, between 0.5 and 0.85.
        self.skill = skill if skill is not None else 0.5 + 0.35 * _unit("skill", name)
        self._served_log = os.environ.get("MIRROR_FAKE_SERVED_LOG")

    @property
    def spec(self) -> str:
        return "fake" if self.name == "default" else f"fake:{self.name}"

    def complete(self, requests: list[TeacherRequest]) -> list[Completion]:
        return [self._one(r) for r in requests]

    def _one(self, req: TeacherRequest) -> Completion:
        t0 = time.perf_counter()
        if self.latency_s:
            time.sleep(self.latency_s)
        key = (self.name, list(req.messages), req.params.as_dict())
        meta = req.meta or {}
        purpose = meta.get("purpose")
        if purpose == "self_eval":
            text = self._self_eval(key, meta)
        elif purpose == "review":
            text = self._review(req.messages[-1]["content"], meta)
        elif purpose == "judge":
            text = self._judge(req.messages[-1]["content"], meta)
        else:
            text = self._cot(key, meta)
        if self._served_log:
            digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
            with open(self._served_log, "a") as f:
                f.write(digest + "\n")
        prompt_words = sum(len(m["content"].split()) for m in req.messages)
        out_words = len(text.split())
        if out_words > req.params.max_tokens:
            text = " ".join(text.split()[: req.params.max_tokens])
            return Completion(text=text, status="truncated", finish_reason="length", input_tokens=prompt_words,
                              output_tokens=req.params.max_tokens, latency_s=time.perf_counter() - t0,
                              raw={"fake": self.name})
        return Completion(text=text, status="ok", finish_reason="stop", input_tokens=prompt_words,
                          output_tokens=out_words, latency_s=time.perf_counter() - t0, raw={"fake": self.name})

    def _cot(self, key, meta) -> str:
        gold = meta.get("gold")
        task_type = meta.get("task_type", "numeric")
        right = _unit("right", key) < self.skill
        if gold is None:
            answer = str(int(_unit("ans", key) * 100))
        else:
            answer = gold if right else _wrong(str(gold), task_type, meta.get("choices"), _unit("wrong", key))
        steps = 1 + int(_unit("steps", key) * 3)
        lines = [f"Step {i + 1}: I work through part {i + 1} of the question carefully." for i in range(steps)]
        if _unit("noline", key) < 0.05:
            lines.append("I am not sure how to finish this.")  # no answer line: a parse error downstream
        else:
            lines.append(f"The answer is {answer}.")
        return "\n".join(lines)

    def _self_eval(self, key, meta) -> str:
        truth = meta.get("cot_correct")
        u = _unit("verdict", key)
        if u < 0.05:
            return "The reasoning looks fine to me overall."  # no verdict line: parse_error
        if u < 0.15:
            verdict = "uncertain"
        elif truth is None:
            verdict = "correct" if u < 0.6 else "wrong"
        else:
            agrees = u < 0.85
            verdict = ("correct" if truth else "wrong") if agrees else ("wrong" if truth else "correct")
        conf = 0.5 + round(0.49 * _unit("conf", key), 2)
        critique = ("Checking each step: the arithmetic and the final line are consistent."
                    if verdict == "correct" else "One step does not follow from the previous one.")
        return f"{critique}\nEvaluation result: the given answer is {verdict}\nConfidence: {conf:.2f}"

    # Peer review (MAPD) and judging (critic) are decided by the content under review, not by the
    # prompt's wording, so a judgment is the same in both orders and scores track correctness.
    def _review(self, prompt: str, meta) -> str:
        solution = prompt.rsplit("Solution to score:", 1)[-1]
        u = _unit("review", self.name, solution)
        if u < 0.1:
            return "The solution is hard to follow."  # no [score]: an invalid review
        right = self._says_gold(solution, meta)
        score = (4 if u < 0.6 else 5) if right else (2 if u < 0.6 else 1)
        if u > 0.9:
            score = 3  # a lukewarm reviewer now and then
        return f"{'The reasoning reaches the right answer.' if right else 'The final answer does not match.'} [{score}]"

    def _judge(self, prompt: str, meta) -> str:
        m = re.search(r"Answer 1:\n(.*?)\n\nAnswer 2:\n(.*)$", prompt, re.S)
        if not m:
            return "I cannot tell the two answers apart."
        first, second = m.group(1).strip(), m.group(2).strip()

        def quality(text: str) -> tuple:
            return (self._says_gold(text, meta), _unit("quality", self.name, text))

        if first == second:
            return "[1] both answers are the same."
        better = 1 if quality(first) > quality(second) else 2
        return f"[{better}] it is the more convincing answer."

    @staticmethod
    def _says_gold(text: str, meta) -> bool:
        gold = meta.get("gold")
        if gold is None:
            return False
        from mirror_core import answers

        return answers.grade(text, str(gold), meta.get("task_type", "numeric"), meta.get("choices")).correct == 1
