"""The one teacher interface: a batch of requests in, completions out, in the same order.

A teacher never raises for a failed request: it returns a `Completion` whose `status` says what went wrong
(error, refused, rate_limited, timeout, truncated), so the caller can record every request on its row.
Retrying is the caller's job (`generation.calls`): a completion marks itself `retryable` and carries the
server's Retry-After when there was one.
"""

from __future__ import annotations

import abc
from dataclasses import asdict, dataclass, field
from typing import Any

STATUSES = ("ok", "error", "refused", "rate_limited", "timeout", "truncated")


@dataclass(frozen=True)
class GenParams:
    """Sampling parameters. `sample_index` tells apart the N samples of one prompt (part of the cache key)."""

    temperature: float = 0.7
    max_tokens: int = 512
    seed: int | None = None
    sample_index: int = 0

    def __post_init__(self):
        if not 0.0 <= self.temperature <= 2.0:
            raise ValueError(f"temperature must be within 0..2, got {self.temperature}")
        if self.max_tokens < 1:
            raise ValueError(f"max_tokens must be at least 1, got {self.max_tokens}")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class TeacherRequest:
    """Chat messages ([{role, content}], an optional leading system message) and sampling parameters.

    `meta` travels with the request but is not sent to API teachers nor part of the cache key: the replay
    teacher finds its answer by it (question id, which CoT) and the fake teacher reads the gold from it.
    """

    messages: tuple[dict[str, str], ...] | list[dict[str, str]]
    params: GenParams = field(default_factory=GenParams)
    meta: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def prompt_chars(self) -> int:
        return sum(len(m.get("content", "")) for m in self.messages)


@dataclass
class Completion:
    """One answer to one request. `raw` is the provider's response as a JSON-able dict (never headers)."""

    text: str = ""
    status: str = "ok"
    finish_reason: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    latency_s: float | None = None
    raw: dict[str, Any] | None = None
    error: str | None = None
    retryable: bool = False
    retry_after_s: float | None = None

    def __post_init__(self):
        if self.status not in STATUSES:
            raise ValueError(f"unknown completion status {self.status!r}; one of {STATUSES}")


class Teacher(abc.ABC):
    """A model that writes text. Subclasses set `provider` and `model` and implement `complete`.

    `batch_size` > 1 means `complete` is efficient on many requests at once (a local model); API teachers
    take one request per call and the caller runs `max_in_flight` of them concurrently.
    """

    provider: str = "?"
    model: str = "?"
    batch_size: int = 1
    max_in_flight: int = 8
    requests_per_minute: float | None = None

    @property
    def spec(self) -> str:
        """The spec that builds this teacher again, also the `author` of what it writes."""
        return f"{self.provider}:{self.model}"

    @property
    def cache_id(self) -> str:
        """What identifies this teacher's outputs in the request cache (the model, plus a file hash for replay)."""
        return self.model

    def samples_available(self, meta: dict[str, Any]) -> int | None:
        """How many samples exist for a request (replay files hold a fixed number); None = unlimited."""
        return None

    @abc.abstractmethod
    def complete(self, requests: list[TeacherRequest]) -> list[Completion]:
        """Answer each request; the result has the same length and order. Never raises for one request."""

    def close(self) -> None:
        """Release clients or model memory."""


def split_system(messages) -> tuple[str | None, list[dict[str, str]]]:
    """(system text, the other messages): Anthropic takes the system prompt apart from the turns."""
    system = [m["content"] for m in messages if m.get("role") == "system"]
    rest = [{"role": m["role"], "content": m["content"]} for m in messages if m.get("role") != "system"]
    return ("\n\n".join(system) if system else None), rest


def retry_after_from_headers(headers) -> float | None:
    """Seconds the server asked us to wait (retry-after-ms, then retry-after in seconds), else None."""
    if headers is None:
        return None
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            return max(0.0, float(value) * scale)
        except ValueError:
            import email.utils
            import time

            parsed = email.utils.parsedate_tz(value)
            if parsed is not None:
                return max(0.0, email.utils.mktime_tz(parsed) - time.time())
    return None


def completion_from_sdk_error(exc: Exception, latency_s: float) -> Completion:
    """A failed SDK call as a Completion. Both official SDKs share the same error classes by shape:
    a timeout class, a connection class, and status errors with `.status_code` and `.response`."""
    name = type(exc).__name__
    status_code = getattr(exc, "status_code", None)
    response = getattr(exc, "response", None)
    message = f"{name}: {exc}"
    if "Timeout" in name:
        return Completion(status="timeout", error=message, latency_s=latency_s, retryable=True)
    if status_code is None:
        # connection refused/reset, or a body the SDK could not decode (malformed JSON)
        retryable = "Connection" in name
        if "JSONDecode" in name or "Validation" in name:
            message = f"malformed response: {message}"
        return Completion(status="error", error=message, latency_s=latency_s, retryable=retryable)
    retry_after = retry_after_from_headers(getattr(response, "headers", None))
    body = getattr(exc, "body", None)
    raw = {"status_code": status_code, "body": body if isinstance(body, (dict, list, str)) else None}
    if status_code == 429:
        return Completion(status="rate_limited", error=message, latency_s=latency_s, raw=raw,
                          retryable=True, retry_after_s=retry_after)
    if status_code in (408, 409) or status_code >= 500:
        return Completion(status="error", error=message, latency_s=latency_s, raw=raw, retryable=True,
                          retry_after_s=retry_after)
    return Completion(status="error", error=message, latency_s=latency_s, raw=raw)
