"""Named, versioned prompt templates, stored in `prompt_templates`; defaults are seeded on first use.

A template's body is the chat it sends: the text above a line `---` is the system message, the rest the
user message. Placeholders: `{{question}}` (with lettered choices when there are some) in every template;
`{{cot}}` and `{{answer}}` in self-evaluation templates. Editing never changes a version in place: it adds
version N+1, and every teacher call records the name and version it used, so old outputs stay explained.

CoT templates (one per task type, few-shot) end in the fixed line "The answer is X."; the self-evaluation
template asks for a critique ending in `Evaluation result: the given answer is correct|wrong|uncertain`
and an optional `Confidence: 0.x` (PAPERS.md §1).
"""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass
from typing import Sequence

from mirror_core import store
from mirror_core.errors import ConfigError, NotFoundError
from mirror_core.formats import format_question

SELF_EVAL = "self-eval"
_SYSTEM = ("You are a careful teacher. Think step by step, then finish with one line of the form "
           "\"The answer is X.\"")

DEFAULTS: dict[str, tuple[str, str]] = {
    "cot-numeric": ("cot", _SYSTEM + """
---
Question: Tom has 3 boxes with 4 apples each. He eats 2 apples. How many apples are left?
Answer: 3 boxes with 4 apples is 3 * 4 = 12 apples. After eating 2, 12 - 2 = 10 are left.
The answer is 10.

Question: A shirt costs $20 and is 25% off. What is the price now?
Answer: 25% of 20 is 5. The price is 20 - 5 = 15.
The answer is 15.

Question: {{question}}
Answer:"""),
    "cot-multiple_choice": ("cot", _SYSTEM + " X is the letter of the choice." + """
---
Question: Where would you put a plate after washing it?
(A) oven (B) cupboard (C) table (D) sink (E) floor
Answer: A clean plate is stored until it is needed again, and plates are stored in a cupboard.
The answer is B.

Question: {{question}}
Answer:"""),
    "cot-yes_no": ("cot", _SYSTEM + " X is yes or no." + """
---
Question: Could a cat fit inside a teacup?
Answer: A teacup holds about 200 ml; an adult cat is far larger than that.
The answer is no.

Question: {{question}}
Answer:"""),
    "cot-free_text": ("cot", _SYSTEM + " X is a short phrase." + """
---
Question: What is the capital of France?
Answer: France's government sits in Paris, its capital.
The answer is Paris.

Question: {{question}}
Answer:"""),
    SELF_EVAL: ("self_eval", """You check solutions. Critique the reasoning step by step: is each step right, \
and does the final answer follow? End with exactly these lines:
Evaluation result: the given answer is correct|wrong|uncertain
Confidence: a number between 0 and 1
---
Question: {{question}}

Proposed reasoning:
{{cot}}

The given answer is {{answer}}. Critique the reasoning, then give the evaluation result.""")
}
PLACEHOLDERS = {"cot": ("question",), "self_eval": ("question", "cot", "answer")}


@dataclass(frozen=True)
class Template:
    name: str
    version: int
    kind: str
    body: str

    def render(self, **fields: str) -> list[dict[str, str]]:
        """The chat messages for these fields; unknown placeholders are an error, not silent text."""
        text = self.body
        for key, value in fields.items():
            text = text.replace("{{" + key + "}}", str(value))
        left = re.findall(r"\{\{(\w+)\}\}", text)
        if left:
            raise ConfigError(f"Template {self.name} v{self.version} needs {', '.join(sorted(set(left)))}.")
        system, sep, user = text.partition("\n---\n")
        if not sep:
            return [{"role": "user", "content": text.strip()}]
        return [{"role": "system", "content": system.strip()}, {"role": "user", "content": user.strip()}]


def cot_name(task_type: str) -> str:
    return f"cot-{task_type}"


def render_cot(t: Template, question: str, choices: Sequence[str] | None) -> list[dict[str, str]]:
    return t.render(question=format_question(question, choices))


def render_self_eval(t: Template, question: str, choices: Sequence[str] | None, cot: str,
                     answer: str | None) -> list[dict[str, str]]:
    return t.render(question=format_question(question, choices), cot=cot.strip(),
                    answer=answer if answer is not None else "(none stated)")


def ensure_defaults(conn: sqlite3.Connection) -> None:
    """Seed version 1 of every default template whose name has no version yet."""
    have = {r[0] for r in conn.execute("SELECT DISTINCT name FROM prompt_templates")}
    missing = [n for n in DEFAULTS if n not in have]
    if not missing:
        return
    with store.transaction(conn):
        for name in missing:
            kind, body = DEFAULTS[name]
            conn.execute("INSERT OR IGNORE INTO prompt_templates (name, version, kind, body, created_at)"
                         " VALUES (?, 1, ?, ?, ?)", (name, kind, body, store.now()))


def get(conn: sqlite3.Connection, name: str, version: int | None = None) -> Template:
    """A template by name, at `version` or the newest."""
    ensure_defaults(conn)
    if version is None:
        row = conn.execute("SELECT * FROM prompt_templates WHERE name = ? ORDER BY version DESC LIMIT 1",
                           (name,)).fetchone()
    else:
        row = conn.execute("SELECT * FROM prompt_templates WHERE name = ? AND version = ?",
                           (name, version)).fetchone()
    if row is None:
        known = ", ".join(r[0] for r in conn.execute("SELECT DISTINCT name FROM prompt_templates ORDER BY name"))
        what = f"'{name}'" + (f" version {version}" if version is not None else "")
        raise NotFoundError(f"No prompt template {what}. Templates: {known}.")
    return Template(row["name"], row["version"], row["kind"], row["body"])


def list_templates(conn: sqlite3.Connection) -> list[dict]:
    """The newest version of each template, with how many versions it has."""
    ensure_defaults(conn)
    return [dict(r) for r in conn.execute(
        "SELECT t.name, t.kind, t.version, t.created_at, c.n AS versions FROM prompt_templates t"
        " JOIN (SELECT name, MAX(version) AS v, COUNT(*) AS n FROM prompt_templates GROUP BY name) c"
        " ON c.name = t.name AND c.v = t.version ORDER BY t.name")]


def versions(conn: sqlite3.Connection, name: str) -> list[Template]:
    ensure_defaults(conn)
    return [Template(r["name"], r["version"], r["kind"], r["body"]) for r in conn.execute(
        "SELECT * FROM prompt_templates WHERE name = ? ORDER BY version", (name,))]


def edit(conn: sqlite3.Connection, name: str, body: str, kind: str | None = None) -> Template:
    """Save `body` as the next version of `name` (a new name needs `kind`); an unchanged body adds nothing."""
    ensure_defaults(conn)
    with store.transaction(conn):
        cur = conn.execute("SELECT * FROM prompt_templates WHERE name = ? ORDER BY version DESC LIMIT 1",
                           (name,)).fetchone()
        kind = kind or (cur["kind"] if cur else None)
        if kind not in PLACEHOLDERS:
            raise ConfigError(f"Template '{name}' is new: give its kind ({' or '.join(PLACEHOLDERS)}).")
        missing = [p for p in PLACEHOLDERS[kind] if "{{" + p + "}}" not in body]
        if missing:
            raise ConfigError(f"A {kind} template must contain " + ", ".join("{{" + p + "}}" for p in missing) + ".")
        if cur is not None and cur["body"] == body:
            return Template(cur["name"], cur["version"], cur["kind"], cur["body"])
        version = (cur["version"] + 1) if cur else 1
        conn.execute("INSERT INTO prompt_templates (name, version, kind, body, created_at) VALUES (?,?,?,?,?)",
                     (name, version, kind, body, store.now()))
    return Template(name, version, kind, body)
