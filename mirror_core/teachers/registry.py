"""`make_teacher(spec)`: palm, fake, fake:NAME, local, local:ID_OR_PATH, anthropic:MODEL, openai:MODEL, replay:PATH."""

from __future__ import annotations

from mirror_core.errors import TeacherError
from mirror_core.teachers.base import Teacher

SPEC_HELP = ("palm (the built-in PaLM 540B CoTs for svamp and commonsense_qa), fake, fake:NAME, local (the offline SmolLM2), local:ID_OR_PATH, anthropic:MODEL, openai:MODEL "
             "(with a base URL for compatible servers) or replay:PATH")


def parse_spec(spec: str) -> tuple[str, str | None]:
    """('provider', 'model or None') of a spec; raises TeacherError for an unknown provider."""
    spec = (spec or "").strip()
    provider, _, rest = spec.partition(":")
    if provider == "palm":
        if rest:
            raise TeacherError(f"Teacher '{spec}': the built-in PaLM teacher takes no model; use 'palm'.")
        return provider, None
    if provider not in ("fake", "local", "anthropic", "openai", "replay"):
        raise TeacherError(f"Unknown teacher '{spec}'. Use {SPEC_HELP}.")
    if provider in ("anthropic", "openai", "replay") and not rest:
        raise TeacherError(f"Teacher '{spec}' needs a {'path' if provider == 'replay' else 'model'}: "
                           f"e.g. {provider}:{'outputs.jsonl' if provider == 'replay' else 'MODEL'}.")
    return provider, rest or None


def absolute_spec(spec: str) -> str:
    """The spec with a relative file path made absolute, so a job started in another folder finds it."""
    import os

    provider, rest = parse_spec(spec)
    if provider in ("replay", "local") and rest and not os.path.isabs(rest) and os.path.exists(rest):
        return f"{provider}:{os.path.abspath(rest)}"
    return spec.strip()


def make_teacher(spec: str, base_url: str | None = None, *, api_key: str | None = None,
                 timeout_s: float | None = None, device: str | None = None) -> Teacher:
    """Build the teacher a spec names. `api_key` is an in-memory override of the env var / secrets."""
    provider, rest = parse_spec(spec)
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
