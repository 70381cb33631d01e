"""Final answers: pull them out of teacher/student text and compare them with the gold, per task type.

Task types (the `TASK_TYPES` tuple): ``numeric``, ``multiple_choice``, ``yes_no``, ``free_text``.

Canonical forms (what `normalize_gold` returns, what the store keeps in ``examples.answer`` and what
`extract_answer` returns):

- numeric: the shortest decimal text of the value: ``"1234"``, ``"-5"``, ``"0.75"``; fractions become
  decimals (``"3/4"`` -> ``"0.75"``), commas, currency signs, units and a trailing ``%`` are dropped.
- multiple_choice: the capital letter of the choice (``"B"``); choices are stored as a list of texts.
- yes_no: ``"yes"`` or ``"no"`` (``true``/``false`` map onto them).
- free_text: lower case, punctuation and articles removed, spaces collapsed (SQuAD-style).

The public API (`extract_answer`, `normalize_gold`, `is_correct`, `grade`, `detect_task_type`) is imported by
the teacher pipeline, curation, evaluation, the loops and import; keep it stable. `grade` is the one grading
rule: every stored `correct` (CoTs, student predictions, loop rationales) comes from it. Arithmetic is
evaluated with `ast`, never `eval`.
"""

from __future__ import annotations

import ast
import math
import operator
import re
import string
from fractions import Fraction
from typing import Any, Iterable, NamedTuple, Sequence

from mirror_core.errors import AnswerParseError

NUMERIC, MULTIPLE_CHOICE, YES_NO, FREE_TEXT = "numeric", "multiple_choice", "yes_no", "free_text"
TASK_TYPES = (NUMERIC, MULTIPLE_CHOICE, YES_NO, FREE_TEXT)
LETTERS = string.ascii_uppercase

# ------------------------------------------------------------------ numbers

_MINUS = "-\u2212\u2013"  # hyphen-minus, unicode minus, en dash (teachers and PDFs use all three)
_CURRENCY = "$\u20ac\u00a3\u00a5\u20b9"
# One number as written in prose: optional sign and currency (either order), thousands groups or plain
# digits, optional decimals, an optional "/denominator" (fractions) and an optional exponent.
_NUM_BODY = r"(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|\.\d+"
NUMBER_RE = re.compile(
    rf"(?<![\w.])(?P<sign>[{_MINUS}])?\s?(?P<cur>[{_CURRENCY}])?\s?(?P<sign2>[{_MINUS}])?"
    rf"(?P<whole>\d+\s+(?=\d+/\d))?"                  # mixed number "1 1/2"
    rf"(?P<num>{_NUM_BODY})(?:\s*/\s*(?P<den>\d+(?:\.\d+)?)(?![\d.]))?"
    rf"(?:[eE](?P<exp>[+-]?\d{{1,3}}))?"
    rf"(?P<pct>\s?%)?"
)
_HASHES_RE = re.compile(r"####\s*(?P<tail>[^\n]*)")
_BOXED_RE = re.compile(r"\\boxed\s*\{(?P<tail>(?:[^{}]|\{[^{}]*\})*)\}")
# "the answer is", "final answer:", "Answer -", "so the correct answer would be" ... capture the rest
# of that line. The last such phrase in a text wins: teachers restate and correct themselves.
_ANSWER_PHRASE_RE = re.compile(
    r"(?:\bfinal\s+answer|\b(?:correct\s+)?answer(?:\s+(?:is|would\s+be|will\s+be|should\s+be|=))"
    r"|\banswer\b\s*(?:[:=]|[\-\u2013](?=\s))|\banswer\s+choice(?:\s+is)?)"
    # A dash after the phrase is a separator only when a space follows: "answer is -7" is negative.
    # The tail is a lookahead so that a later phrase on the same line is found too ("first answer is 5;
    # the answer is 7" reads 7).
    r"\s*(?:is\s*)?(?:[:=]|[\-\u2013](?=\s))?\s*(?=(?P<tail>[^\n]*))",
    re.IGNORECASE,
)
_PLAIN_INT_RE = re.compile(r"-?\d+")
_GROUPED_INT_RE = re.compile(r"-?\d{1,3}(?:,\d{3})+")
_HAS_OP_RE = re.compile(r"[\d)]\s*[-+*/^x\u00d7\u00f7]\s*[-\u2212\d(]")
_EXPR_CHARS_RE = re.compile(r"^[\d\s.,+\-*/()^x\u00d7\u00f7\u2212]+$")
_BARE_NUMERIC_RE = re.compile(rf"[\d\s.,+*/()^x\u00d7\u00f7=%\-\u2212\u2013{_CURRENCY}]+")


def _fraction_from_match(m: re.Match) -> Fraction:
    num = Fraction(m.group("num").replace(",", ""))
    if m.group("den"):
        den = Fraction(m.group("den"))
        if den == 0:
            raise ZeroDivisionError
        num = num / den
    if m.group("whole"):
        num = int(m.group("whole")) + num
    if m.group("exp"):
        num = num * Fraction(10) ** int(m.group("exp"))
    if m.group("sign") or m.group("sign2"):
        num = -num
    return num


def format_number(value: Fraction | int | float) -> str:
    """Canonical text of a number: integers without a dot, others as the shortest float text."""
    if isinstance(value, float):
        if not math.isfinite(value):
            raise AnswerParseError(f"{value} is not a finite number")
        value = Fraction(value).limit_denominator(10**12) if value != int(value) else Fraction(int(value))
    value = Fraction(value)
    if value.denominator == 1:
        return str(value.numerator)
    text = repr(float(value))
    if "e" in text or "E" in text:
        text = f"{float(value):.12f}".rstrip("0").rstrip(".")
    return text


def parse_number(text: str) -> Fraction | None:
    """The value of one number written in prose ("$1,234.50", "-3/4", "12 apples"), else None."""
    m = NUMBER_RE.search(text)
    if not m:
        return None
    try:
        return _fraction_from_match(m)
    except (ZeroDivisionError, ValueError):
        return None


def _numbers(text: str) -> list[Fraction]:
    out = []
    for m in NUMBER_RE.finditer(text):
        try:
            out.append(_fraction_from_match(m))
        except (ZeroDivisionError, ValueError):
            continue
    return out


# ------------------------------------------------------------------ safe arithmetic (SVAMP equations)

_BINOPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
           ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.Pow: operator.pow}
_UNARY = {ast.UAdd: operator.pos, ast.USub: operator.neg}


def _eval_node(node: ast.AST) -> Fraction:
    if isinstance(node, ast.Expression):
        return _eval_node(node.body)
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return Fraction(str(node.value)) if isinstance(node.value, float) else Fraction(node.value)
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _UNARY[type(node.op)](_eval_node(node.operand))
    if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
        left, right = _eval_node(node.left), _eval_node(node.right)
        if isinstance(node.op, ast.Pow):
            # Bounded so "9**9**9" cannot hang the importer.
            if right.denominator != 1 or abs(right) > 64 or abs(left) > 10**12:
                raise AnswerParseError("exponent too large or not an integer")
            return left ** int(right)
        if isinstance(node.op, (ast.Div, ast.FloorDiv, ast.Mod)) and right == 0:
            raise AnswerParseError("division by zero")
        return Fraction(_BINOPS[type(node.op)](left, right))
    raise AnswerParseError(f"'{type(node).__name__}' is not allowed in an arithmetic expression")


def safe_eval(expression: str) -> Fraction:
    """Value of an arithmetic expression (+ - * / // % ** ^, parentheses, x and ÷ for times and divide).

    Parsed with `ast` and walked node by node; names, calls and attributes are refused.
    Raises AnswerParseError when the text is not such an expression.
    """
    text = expression.strip().rstrip(".").strip()
    text = (text.replace("\u00d7", "*").replace("\u00f7", "/").replace("\u2212", "-")
            .replace("^", "**"))
    text = re.sub(r"(?<=[\d)])\s*x\s*(?=[\d(])", "*", text)  # "3 x 4" -> "3*4"
    text = re.sub(r"(?<=\d),(?=\d{3}(?!\d))", "", text)       # thousands commas
    if not text or len(text) > 500:
        raise AnswerParseError("empty or too long expression")
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as exc:
        raise AnswerParseError(f"'{expression}' is not an arithmetic expression") from exc
    return _eval_node(tree)


def _value_of_tail(tail: str) -> Fraction | None:
    """The number a phrase like "5 + 3 = 8 apples." or "(5 + 3) * 2" states."""
    tail = tail.strip()
    if not tail:
        return None
    if "=" in tail:  # "x = 5 + 3 = 8": the value is after the last "="
        after = tail.rsplit("=", 1)[1]
        value = parse_number(after)
        if value is not None:
            return value
    expr = tail.rstrip(" .!")
    if _EXPR_CHARS_RE.match(expr) and _HAS_OP_RE.search(expr):
        try:
            return safe_eval(expr)
        except (AnswerParseError, ZeroDivisionError, OverflowError):
            pass
    return parse_number(tail)


def _extract_numeric(text: str) -> str | None:
    for rx in (_HASHES_RE, _BOXED_RE):
        matches = list(rx.finditer(text))
        for m in reversed(matches):
            value = _value_of_tail(m.group("tail"))
            if value is not None:
                return format_number(value)
    for m in reversed(list(_ANSWER_PHRASE_RE.finditer(text))):
        value = _value_of_tail(m.group("tail"))
        if value is not None:
            return format_number(value)
    # No final-answer phrase: only a text that is nothing but a number or an arithmetic expression is an
    # answer. "Step 3\nI am not sure how to finish this" states no answer (the last number is not one).
    bare = text.strip().strip("*").strip()
    if len(bare) <= 200 and _BARE_NUMERIC_RE.fullmatch(bare) and len(_numbers(bare.split("=")[-1])) >= 1:
        value = _value_of_tail(bare)
        if value is not None and (len(_numbers(bare)) == 1 or _HAS_OP_RE.search(bare)):
            return format_number(value)
    return None


def _normalize_numeric_gold(answer: Any) -> str:
    if isinstance(answer, bool):
        raise AnswerParseError(f"{answer!r} is a boolean, not a number")
    if isinstance(answer, int):
        return str(answer)
    if isinstance(answer, float):
        return format_number(answer)
    text = str(answer).strip()
    if _PLAIN_INT_RE.fullmatch(text):  # fast path: most golds are plain integers
        return str(int(text))
    if _GROUPED_INT_RE.fullmatch(text):  # "1,234"
        return str(int(text.replace(",", "")))
    if "####" in text:
        m = list(_HASHES_RE.finditer(text))[-1]
        value = _value_of_tail(m.group("tail"))
    elif _EXPR_CHARS_RE.match(text) and _HAS_OP_RE.search(text):
        # SVAMP-style gold given as an equation: "( 25.0 - 12.0 ) * 3.0"
        value = safe_eval(text)
    else:
        value = _value_of_tail(text) if len(text) <= 200 else None
        if value is not None and len(_numbers(text)) > 1 and "=" not in text:
            value = None  # "3 or 4" is not one gold number
    if value is None:
        raise AnswerParseError(f"'{_short(text)}' is not a number")
    return format_number(value)


# ------------------------------------------------------------------ multiple choice

def _norm_text(text: str) -> str:
    """SQuAD-style normalization: lower case, no punctuation, no articles, single spaces."""
    text = str(text).lower()
    text = "".join(" " if ch in string.punctuation else ch for ch in text)
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def _letters(choices: Sequence[str] | None) -> str:
    return LETTERS[: len(choices)] if choices else LETTERS[:5]


_LETTER_ALONE_RE = re.compile(r"^\s*[\(\[*]*\s*(?:option|choice)?\s*\(?([A-Z])\)?\s*[\)\]*]*\s*(?:[.,:;)\-]|$|\s)",
                              re.IGNORECASE)
_PAREN_LETTER_RE = re.compile(r"\(([A-Za-z])\)")


def _letter_at_start(tail: str, letters: str, *, allow_lower: bool) -> str | None:
    m = _LETTER_ALONE_RE.match(tail)
    if not m:
        return None
    letter = m.group(1)
    if letter.islower() and not allow_lower:
        return None
    letter = letter.upper()
    # "A" followed by more words is usually the article ("a bank"), unless it looks like "A." / "(A)".
    rest = tail[m.end(1):]
    if letter == "A" and m.group(1) == "a" and re.match(r"\s+\w", rest):
        return None
    return letter if letter in letters else None


def _light_text(text: str) -> str:
    """Lower case, punctuation dropped, single spaces; articles kept (unlike `_norm_text`)."""
    text = "".join(" " if ch in string.punctuation else ch for ch in str(text).lower())
    return " ".join(text.split())


def _choice_in_text(text: str, choices: Sequence[str]) -> str | None:
    """The letter of the one choice whose text appears in `text` (longest wins if nested), else None.

    Compared with articles kept first ("is ground" names "ground", not "the ground"), then without."""
    light = f" {_light_text(text)} "
    exact = [i for i, c in enumerate(choices) if _light_text(c) and light.strip() == _light_text(c)]
    if len(exact) == 1:
        return LETTERS[exact[0]]
    letter = _choice_in(light, [_light_text(c) for c in choices])
    return letter if letter is not None else _choice_in(f" {_norm_text(text)} ", [_norm_text(c) for c in choices])


def _choice_in(norm: str, normed: Sequence[str]) -> str | None:
    found = []
    for i, c in enumerate(normed):
        if c and f" {c} " in norm:
            found.append((len(c), -i))
    if not found:
        return None
    found.sort(reverse=True)
    _, best = found[0]
    best = -best
    # Two unrelated choices in one phrase: ambiguous. A choice nested in a longer one is not.
    others = [-i for _, i in found[1:] if normed[-i] not in normed[best]]
    return None if others else LETTERS[best]


def _extract_choice(text: str, choices: Sequence[str] | None) -> str | None:
    letters = _letters(choices)
    stripped = text.strip()
    for m in reversed(list(_ANSWER_PHRASE_RE.finditer(text))):
        tail = m.group("tail")
        letter = _letter_at_start(tail, letters, allow_lower=True)
        if letter:
            return letter
        if choices:
            letter = _choice_in_text(tail, choices)
            if letter:
                return letter
    for rx in (_BOXED_RE, _HASHES_RE):
        for m in reversed(list(rx.finditer(text))):
            letter = _letter_at_start(m.group("tail"), letters, allow_lower=True)
            if letter:
                return letter
    bare = stripped.strip("*").strip()
    letter = None
    if len(bare) <= 3:                                # "B", "(c)", "D."
        letter = _letter_at_start(bare, letters, allow_lower=True)
    elif re.match(r"[\(\[]?[A-Z][\)\].:]", bare):     # "B) library", "(B) because ..."
        letter = _letter_at_start(bare, letters, allow_lower=False)
    if letter:
        return letter
    parens = [x.upper() for x in _PAREN_LETTER_RE.findall(text) if x.upper() in letters]
    if parens:
        return parens[-1]
    if choices:
        lines = [ln for ln in text.strip().splitlines() if ln.strip()]
        for line in reversed(lines[-2:]):
            letter = _choice_in_text(line, choices)
            if letter:
                return letter
    return None


def _normalize_choice_gold(answer: Any, choices: Sequence[str] | None) -> str:
    letters = _letters(choices)
    if isinstance(answer, bool):
        raise AnswerParseError(f"{answer!r} is not a choice")
    if isinstance(answer, int):
        # Integer golds are 0-based indexes (the Hugging Face `label` convention).
        if 0 <= answer < len(letters):
            return letters[answer]
        raise AnswerParseError(f"choice index {answer} is out of range for {len(letters)} choices")
    text = str(answer).strip()
    if text.isdigit():
        return _normalize_choice_gold(int(text), choices)
    letter = _letter_at_start(text, letters, allow_lower=len(text) <= 3)
    if letter and (len(text) <= 4 or re.match(r"\s*\(?[A-Z]\)?[.):]", text)):
        return letter
    if choices:
        # An exact match (case and outer punctuation aside) wins over one equal only after dropping
        # articles: "ground" among "the ground", "ground" is the second choice.
        light = _light_text(text)
        for i, choice in enumerate(choices):
            if _light_text(choice) == light:
                return LETTERS[i]
        target = _norm_text(text)
        for i, choice in enumerate(choices):
            if _norm_text(choice) == target:
                return LETTERS[i]
    raise AnswerParseError(
        f"'{_short(text)}' is neither a choice letter ({letters[0]}-{letters[-1]}) nor one of the choice texts")


# ------------------------------------------------------------------ yes / no

_YES = {"yes", "true", "y", "correct"}
_NO = {"no", "false", "n", "incorrect"}
_YESNO_WORD_RE = re.compile(r"\b(yes|no|true|false)\b", re.IGNORECASE)


def _yes_no_word(word: str) -> str | None:
    w = word.strip().strip(string.punctuation + " *").lower()
    if w in _YES:
        return "yes"
    if w in _NO:
        return "no"
    return None


def _extract_yes_no(text: str) -> str | None:
    for m in reversed(list(_ANSWER_PHRASE_RE.finditer(text))):
        w = _YESNO_WORD_RE.search(m.group("tail")[:40])
        if w:
            return _yes_no_word(w.group(1))
    for m in reversed(list(_HASHES_RE.finditer(text))):
        w = _YESNO_WORD_RE.search(m.group("tail"))
        if w:
            return _yes_no_word(w.group(1))
    first = re.match(r"\s*\**\s*(\w+)", text)
    if first and _yes_no_word(first.group(1)) and first.group(1).lower() in ("yes", "no", "true", "false"):
        return _yes_no_word(first.group(1))
    words = _YESNO_WORD_RE.findall(text)
    return _yes_no_word(words[-1]) if words else None


def _normalize_yes_no_gold(answer: Any) -> str:
    if isinstance(answer, bool):
        return "yes" if answer else "no"
    if isinstance(answer, (int, float)) and answer in (0, 1):
        return "yes" if answer == 1 else "no"
    text = str(answer).strip()
    if text in ("1", "0"):
        return "yes" if text == "1" else "no"
    value = _yes_no_word(text)
    if value is None:
        raise AnswerParseError(f"'{_short(text)}' is not yes/no/true/false")
    return value


# ------------------------------------------------------------------ free text

def _extract_free_text(text: str) -> str | None:
    for m in reversed(list(_ANSWER_PHRASE_RE.finditer(text))):
        tail = m.group("tail").strip().strip("*").strip()
        if tail:
            return _norm_text(tail) or None
    for m in reversed(list(_HASHES_RE.finditer(text))):
        if m.group("tail").strip():
            return _norm_text(m.group("tail")) or None
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    return (_norm_text(lines[-1]) or None) if lines else None


# ------------------------------------------------------------------ public API

def _check_type(task_type: str) -> None:
    if task_type not in TASK_TYPES:
        raise AnswerParseError(f"unknown task type '{task_type}'; use one of {', '.join(TASK_TYPES)}")


def _short(text: str, n: int = 60) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= n else text[: n - 1] + "\u2026"


def extract_answer(text: str | None, task_type: str, choices: Sequence[str] | None = None) -> str | None:
    """The final answer stated in a model's output, in canonical form, or None if it states none.

    Looks, in order, for `#### N`, `\\boxed{}`, the last "the answer is …"/"Final answer: …" phrase, then a
    type-specific fallback (last number; a bare letter or "(B)" or a choice text; a yes/no word).
    """
    _check_type(task_type)
    if text is None:
        return None
    text = str(text)
    if not text.strip():
        return None
    if task_type == NUMERIC:
        return _extract_numeric(text)
    if task_type == MULTIPLE_CHOICE:
        return _extract_choice(text, choices)
    if task_type == YES_NO:
        return _extract_yes_no(text)
    return _extract_free_text(text)


def normalize_gold(answer: Any, task_type: str, choices: Sequence[str] | None = None) -> str:
    """Canonical text of a gold answer (see module doc); raises AnswerParseError if it does not parse.

    Numeric golds may be numbers, prose ("$1,200"), GSM8K solutions ending `#### N` or SVAMP equations.
    Choice golds may be a letter ("B", "(b)"), a 0-based index (int or digits) or a choice's text.
    """
    _check_type(task_type)
    if answer is None or (isinstance(answer, str) and not answer.strip()):
        raise AnswerParseError("the gold answer is empty")
    if task_type == NUMERIC:
        return _normalize_numeric_gold(answer)
    if task_type == MULTIPLE_CHOICE:
        return _normalize_choice_gold(answer, choices)
    if task_type == YES_NO:
        return _normalize_yes_no_gold(answer)
    norm = _norm_text(answer)
    if not norm:
        raise AnswerParseError(f"'{_short(str(answer))}' has no words left after normalization")
    return norm


def _as_canonical(pred: Any, task_type: str, choices: Sequence[str] | None) -> str | None:
    """A short prediction as canonical text; longer model output goes through extract_answer."""
    try:
        return normalize_gold(pred, task_type, choices)
    except AnswerParseError:
        return extract_answer(str(pred), task_type, choices)


def is_correct(pred: Any, gold: Any, task_type: str, choices: Sequence[str] | None = None,
               tol: float = 1e-6) -> bool:
    """Whether a prediction matches the gold. `pred` may be an extracted answer or raw model output.

    Numeric answers match within `tol` (relative and absolute); None or an unparsable prediction is wrong.
    """
    _check_type(task_type)
    if pred is None:
        return False
    gold_c = normalize_gold(gold, task_type, choices)
    pred_c = _as_canonical(pred, task_type, choices)
    if pred_c is None:
        return False
    if task_type == NUMERIC:
        p, g = Fraction(pred_c), Fraction(gold_c)
        return p == g or math.isclose(float(p), float(g), rel_tol=tol, abs_tol=tol)
    return pred_c == gold_c


class Graded(NamedTuple):
    """What `grade` says about one output: its answer, whether one was found, and its correctness."""

    answer: str | None     # the extracted answer in canonical form, None when the output states none
    parse_status: str      # "ok" or "parse_error" (no answer found)
    correct: int | None    # 1 right, 0 wrong, None ungradable (the gold does not parse)


def grade_answer(pred: str | None, gold: Any, task_type: str, choices: Sequence[str] | None = None) -> int | None:
    """The grading rule for an answer already extracted (or None): 1 right, 0 wrong, None ungradable.

    - A gold that does not parse for the task type makes the answer ungradable (None) whatever it is:
      correctness is unknown, never "wrong" and never 0. (Import refuses such golds for numeric sets, so
      this shows up only for rows stored before that check or changed by hand.)
    - Otherwise no answer (None) is wrong (0): a model that states no final answer did not answer.
    - Otherwise `is_correct` decides (numbers within its tolerance).
    """
    _check_type(task_type)
    try:
        normalize_gold(gold, task_type, choices)
    except AnswerParseError:
        return None
    if pred is None:
        return 0
    return int(is_correct(pred, gold, task_type, choices))


def grade(text: str | None, gold: Any, task_type: str, choices: Sequence[str] | None = None) -> Graded:
    """Grade a model's output against the gold: extract its final answer, then apply `grade_answer`.

    The last final-answer phrase in the text is the one graded (see `extract_answer`).
    """
    pred = extract_answer(text, task_type, choices)
    return Graded(pred, "ok" if pred is not None else "parse_error", grade_answer(pred, gold, task_type, choices))


def parses_as(answer: Any, task_type: str, choices: Sequence[str] | None = None) -> bool:
    """Whether `normalize_gold` accepts this answer for the task type."""
    try:
        normalize_gold(answer, task_type, choices)
        return True
    except AnswerParseError:
        return False


def detect_task_type(answers: Iterable[Any], choices_present: bool, threshold: float = 0.9) -> str:
    """Guess the task type from a sample of gold answers.

    Choices present -> multiple_choice; else yes_no if (nearly) all golds are yes/no/true/false, numeric if
    at least `threshold` of them parse as numbers, else free_text. A small share of odd golds still picks
    numeric so that import reports them by row instead of silently importing everything as free text.
    """
    if choices_present:
        return MULTIPLE_CHOICE
    sample = [a for a in answers if a is not None and str(a).strip() != ""]
    if not sample:
        return FREE_TEXT
    n = len(sample)
    # Only words and booleans count as yes/no here: a column of 0/1 is more likely numeric.
    yes_no = sum(1 for a in sample
                 if isinstance(a, bool) or (isinstance(a, str) and _yes_no_word(a) is not None))
    if yes_no >= threshold * n:
        return YES_NO
    numeric = sum(1 for a in sample if parses_as(a, NUMERIC))
    if numeric >= threshold * n:
        return NUMERIC
    return FREE_TEXT


def split_solution(answer: str) -> tuple[str | None, str]:
    """Split a GSM8K-style solution "steps ... #### 18" into (rationale, final answer text)."""
    text = str(answer)
    if "####" not in text:
        return None, text
    head, _, tail = text.rpartition("####")
    head = re.sub(r"<<[^<>]*>>", "", head).strip()  # GSM8K calculator annotations
    return (head or None), tail.strip()
