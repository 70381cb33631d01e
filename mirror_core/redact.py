"""Keep API keys out of everything stored, logged or shown.

A provider error can quote the key it was given (a 401 body: "Incorrect API key provided: sk-..."), and
that text would otherwise reach `teacher_calls.error` / `.raw`, `runs.error`, a job's log, the CLI and the
pages. `redact(text)` replaces

- every key this process knows: the value of each environment variable named `*_API_KEY` (which
  includes ANTHROPIC_API_KEY and OPENAI_API_KEY) or ending in `_AUTH_TOKEN`, plus keys handed to a
  teacher in memory (`remember(key)`, e.g. a key typed into the app or read from Streamlit secrets);
- key-shaped strings whoever they belong to: `sk-...` and `sk-ant-...` tokens (16 or more characters after
  `sk-`) and `Bearer <token>` credentials.

Each is replaced by `[REDACTED]`. Values shorter than `MIN_KEY_CHARS` are not treated as keys (a
placeholder such as "no-key" must not blank that word everywhere).
`redact_obj` does the same through dicts and lists (a provider's raw error body), and
`RedactingStream` wraps a text stream so that whatever a job prints to its log passes through `redact`.
"""

from __future__ import annotations

import io
import os
import re
import threading
from typing import Any

MASK = "[REDACTED]"
MIN_KEY_CHARS = 8
# sk-..., sk-ant-api03-..., sk-proj-...: at least 16 key characters after "sk-", not inside a longer word.
_KEY_SHAPED = re.compile(r"(?<![A-Za-z0-9_-])sk-[A-Za-z0-9_-]{16,}")
_BEARER = re.compile(r"(?i)\b(bearer\s+)[A-Za-z0-9._~+/=-]{8,}")

_remembered: set[str] = set()
_lock = threading.Lock()


def remember(key: str | None) -> None:
    """Treat `key` as a secret from now on in this process (an in-memory key given to a teacher)."""
    if key and isinstance(key, str) and len(key.strip()) >= MIN_KEY_CHARS:
        with _lock:
            _remembered.add(key.strip())


def remember_teacher(teacher: Any) -> None:
    """Remember the key an API teacher's SDK client holds, wherever it came from (argument, environment,
    Streamlit secrets): both official SDK clients keep it as `.api_key`."""
    client = getattr(teacher, "_client", None)
    remember(getattr(client, "api_key", None))


def _env_keys() -> set[str]:
    out = set()
    for name, value in os.environ.items():
        upper = name.upper()
        if (upper.endswith("_API_KEY") or upper.endswith("_AUTH_TOKEN")) and value and \
                len(value.strip()) >= MIN_KEY_CHARS:
            out.add(value.strip())
    return out


def known_keys() -> list[str]:
    """The secrets this process knows, longest first (so a key containing another is masked whole)."""
    with _lock:
        keys = set(_remembered)
    keys |= _env_keys()
    return sorted(keys, key=len, reverse=True)


def redact(text: Any) -> Any:
    """`text` with every known key and key-shaped string replaced by MASK; non-strings pass unchanged."""
    if not isinstance(text, str) or not text:
        return text
    for key in known_keys():
        if key in text:
            text = text.replace(key, MASK)
    text = _KEY_SHAPED.sub(MASK, text)
    return _BEARER.sub(lambda m: m.group(1) + MASK, text)


def redact_obj(obj: Any) -> Any:
    """A copy of a JSON-like value (dicts, lists, strings) with every string redacted, keys included."""
    if isinstance(obj, str):
        return redact(obj)
    if isinstance(obj, dict):
        return {redact(k) if isinstance(k, str) else k: redact_obj(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [redact_obj(v) for v in obj]
    return obj


class RedactingStream(io.TextIOBase):
    """A text stream that redacts whole lines before handing them to `target`.

    Text is held until its line ends (a key never spans lines, so it is never cut in two between writes);
    `flush` passes on a partial line too."""

    def __init__(self, target):
        self.target = target
        self._buf = ""
        self._lock = threading.Lock()

    def writable(self) -> bool:
        return True

    def write(self, s: str) -> int:
        with self._lock:
            self._buf += s
            if "\n" in self._buf:
                head, _, self._buf = self._buf.rpartition("\n")
                self.target.write(redact(head + "\n"))
        return len(s)

    def flush(self) -> None:
        with self._lock:
            if self._buf:
                self.target.write(redact(self._buf))
                self._buf = ""
        self.target.flush()

    def fileno(self) -> int:
        return self.target.fileno()

    def isatty(self) -> bool:
        return False

    @property
    def encoding(self):
        return getattr(self.target, "encoding", "utf-8")
