"""Teacher specs: `TeacherSpec.parse` (the one parser of a spec string) and `make_teacher(spec)`.

A spec names a teacher: palm, fake, fake:NAME, local, local:ID_OR_PATH, anthropic:MODEL, openai:MODEL or
replay:PATH. It is parsed once where it enters (the CLI, a page, a job's config) into a `TeacherSpec`,
which travels as the object or as its canonical string `raw` — the form kept in job configs and, through
`Teacher.spec`, as the author of what a teacher writes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace

from mirror_core.errors import TeacherError
from mirror_core.teachers.base import Teacher

SPEC_HELP = ("palm (the built-in PaLM 540B CoTs for svamp and commonsense_qa), fake, fake:NAME, local (the offline SmolLM2), local:ID_OR_PATH, anthropic:MODEL, openai:MODEL "
             "(with a base URL for compatible servers) or replay:PATH")
KINDS = ("palm", "fake", "local", "anthropic", "openai", "replay")


@dataclass(frozen=True)
class TeacherSpec:
    """A parsed teacher spec: its `kind` (the provider), `model` (model id, name or path; None where the kind
    has a default or takes none) and `raw`, the canonical spec string (stripped as given)."""

    kind: str
    model: str | None
    raw: str

    @classmethod
    def parse(cls, spec: "str | TeacherSpec") -> "TeacherSpec":
        """The spec parsed; a TeacherSpec is returned as is. Raises TeacherError, one sentence naming the fix."""
        if isinstance(spec, TeacherSpec):
            return spec
        raw = (spec or "").strip() if isinstance(spec, str) else spec
        if not isinstance(raw, str) or not raw:
            raise TeacherError(f"A teacher spec must be a non-empty text, not {spec!r}; use {SPEC_HELP}.")
        kind, _, rest = raw.partition(":")
        if kind == "palm":
            if rest:
                raise TeacherError(f"Teacher '{raw}': the built-in PaLM teacher takes no model; use 'palm'.")
            return cls("palm", None, raw)
        if kind not in KINDS:
            raise TeacherError(f"Unknown teacher '{raw}'; use {SPEC_HELP}.")
        if kind in ("anthropic", "openai", "replay") and not rest:
            raise TeacherError(f"Teacher '{raw}' needs a {'path' if kind == 'replay' else 'model'}: "
                               f"e.g. {kind}:{'outputs.jsonl' if kind == 'replay' else 'MODEL'}.")
        return cls(kind, rest or None, raw)

    @property
    def display_name(self) -> str:
        """How the app and reports name this teacher (see `display_name`)."""
        return display_name(self.raw)

    def absolute(self) -> "TeacherSpec":
        """The spec with a relative file path made absolute, so a job started in another folder finds it."""
        if self.kind in ("replay", "local") and self.model and not os.path.isabs(self.model) \
                and os.path.exists(self.model):
            path = os.path.abspath(self.model)
            return replace(self, model=path, raw=f"{self.kind}:{path}")
        return self

    def __str__(self) -> str:
        return self.raw


def make_teacher(spec: "str | TeacherSpec", base_url: str | None = None, *, api_key: str | None = None,
                 timeout_s: float | None = None, device: str | None = None) -> Teacher:
    """Build the teacher a spec names. `api_key` is an in-memory override of the env var / secrets."""
    parsed = TeacherSpec.parse(spec)
    provider, rest = parsed.kind, parsed.model
    if provider == "palm":
        from mirror_core.teachers.palm import PalmTeacher

        return PalmTeacher()
    if provider == "fake":
        from mirror_core.teachers.fake import FakeTeacher

        return FakeTeacher(rest or "default")
    if provider == "local":
        from mirror_core.teachers.local import LocalTeacher

        return LocalTeacher(rest or "smollm2", device=device)
    if provider == "replay":
        from mirror_core.teachers.replay import ReplayTeacher

        return ReplayTeacher(rest)
    kwargs = {"api_key": api_key, "base_url": base_url}
    if timeout_s is not None:
        kwargs["timeout_s"] = timeout_s
    if provider == "anthropic":
        from mirror_core.teachers.anthropic import AnthropicTeacher

        return AnthropicTeacher(rest, **kwargs)
    from mirror_core.teachers.openai import OpenAITeacher

    return OpenAITeacher(rest, **kwargs)


def display_name(spec: str | None) -> str:
    """How the app and reports name a teacher (an author spec): the built-ins by name, others by spec."""
    if spec == "palm":
        from mirror_core.teachers.palm import DISPLAY_NAME

        return DISPLAY_NAME
    if spec == "reference":
        return "reference (CoT's answer vs gold)"
    return spec or ""
