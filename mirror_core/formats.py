"""The student's text layout for every task, shared by training, evaluation and the loops.

Mind's Mirror trains one student on several tasks marked by a prefix (PAPERS.md §1). A decoder-only
student sees `prompt + target + eos` with the loss on target tokens only; a seq2seq student gets the
prompt as input and the target as labels. Evaluation builds the *same* prompts, so a change here is a
change to every model trained before it: bump FORMAT_VERSION, which checkpoints record.
"""

from __future__ import annotations

import re
from typing import Sequence

FORMAT_VERSION = 1
TASKS = ("answer", "cot", "verdict", "critique")
VERDICTS = ("correct", "wrong", "uncertain")
# The verdict prompt ends right before the verdict word, so its probability can be read off the
# next-token distribution (the student's self-evaluation confidence) with a single forward pass.
VERDICT_STEM = "Evaluation result: the given answer is"
_ANSWER_LINE = re.compile(r"answer is\s*:?\s*\S", re.IGNORECASE)


def format_question(question: str, choices: Sequence[str] | None = None) -> str:
    """The question with lettered choices, one per line, when it has choices."""
    q = question.strip()
    if choices:
        q += "\n" + "\n".join(f"({chr(65 + i)}) {c}" for i, c in enumerate(choices))
    return q


def answer_line(answer: str) -> str:
    return f"The answer is {str(answer).strip()}."


def prompt(task: str, question: str, choices: Sequence[str] | None = None, cot: str | None = None) -> str:
    """The input text for `task`. `verdict` and `critique` need the CoT being evaluated."""
    q = format_question(question, choices)
    if task == "answer":
        return f"[answer] Question: {q}\nAnswer:"
    if task == "cot":
        return f"[reason] Question: {q}\nLet's think step by step.\n"
    if task in ("verdict", "critique"):
        if cot is None:
            raise ValueError(f"task '{task}' needs the CoT it evaluates")
        head = f"[{'verdict' if task == 'verdict' else 'critique'}] Question: {q}\nProposed reasoning:\n{cot.strip()}\n"
        return head + (VERDICT_STEM if task == "verdict" else "Critique:\n")
    raise ValueError(f"unknown task '{task}'; tasks are {', '.join(TASKS)}")


def target(task: str, *, answer: str | None = None, cot: str | None = None, verdict: str | None = None,
           critique: str | None = None) -> str:
    """The text the student must produce for `task` (without the end-of-sequence token)."""
    if task == "answer":
        return " " + answer_line(answer or "")
    if task == "cot":
        text = (cot or "").strip()
        last = text.splitlines()[-1] if text else ""
        # Every CoT target ends in the fixed answer line so the answer can be read back reliably.
        if answer is not None and not _ANSWER_LINE.search(last):
            text = (text + "\n" if text else "") + answer_line(answer)
        return text
    if task == "verdict":
        if verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {VERDICTS}, got {verdict!r}")
        return f" {verdict}."
    if task == "critique":
        return (critique or "").strip()
    raise ValueError(f"unknown task '{task}'; tasks are {', '.join(TASKS)}")


def parse_verdict(text: str) -> str | None:
    """The verdict word in a generated verdict/critique, or None when there is none."""
    m = re.search(r"answer is\s*\**\s*(correct|wrong|incorrect|uncertain)", text, re.IGNORECASE)
    if not m:
        m = re.match(r"\s*\**\s*(correct|wrong|incorrect|uncertain)\b", text, re.IGNORECASE)
    if not m:
        return None
    word = m.group(1).lower()
    return "wrong" if word == "incorrect" else word
