"""OpenAI teacher through the official `openai` SDK (chat completions); any OpenAI-compatible server
(vLLM, Ollama, llama.cpp server) by `base_url`. SDK retries are off: `generation.calls` retries."""

from __future__ import annotations

import time

from mirror_core.teachers import keys
from mirror_core.teachers.base import Completion, Teacher, TeacherRequest, completion_from_sdk_error

DEFAULT_TIMEOUT_S = 120.0


class OpenAITeacher(Teacher):
    provider = "openai"
    max_in_flight = 8
    requests_per_minute = 60

    def __init__(self, model: str, *, api_key: str | None = None, base_url: str | None = None,
                 timeout_s: float = DEFAULT_TIMEOUT_S):
        import openai

        self.model = model
        self.base_url = base_url
        # Local compatible servers (Ollama, vLLM) ignore the key, so with a base URL one is optional.
        key = keys.get_key("openai", api_key, required=base_url is None) or "no-key"
        self._client = openai.OpenAI(api_key=key, base_url=base_url, max_retries=0, timeout=timeout_s)

    def complete(self, requests: list[TeacherRequest]) -> list[Completion]:
        return [self._one(r) for r in requests]

    def _one(self, req: TeacherRequest) -> Completion:
        p = req.params
        kwargs = dict(model=self.model, messages=[dict(m) for m in req.messages], max_tokens=p.max_tokens,
                      temperature=p.temperature)
        if p.seed is not None:
            kwargs["seed"] = p.seed
        t0 = time.perf_counter()
        try:
            resp = self._client.chat.completions.create(**kwargs)
        except Exception as exc:  # noqa: BLE001 - every failure becomes a recorded status
            return completion_from_sdk_error(exc, time.perf_counter() - t0)
        latency = time.perf_counter() - t0
        try:
            raw = resp.model_dump(mode="json")
            choice = resp.choices[0]
            msg = choice.message
            text = msg.content or ""
            refusal = getattr(msg, "refusal", None)
            finish = choice.finish_reason
            usage = resp.usage
        except Exception as exc:  # noqa: BLE001 - a reply missing its fields is malformed, not a crash
            return Completion(status="error", error=f"malformed response: {type(exc).__name__}: {exc}",
                              latency_s=latency)
        if refusal or finish == "content_filter":
            status, err = "refused", f"the model refused: {refusal or finish}"
        elif finish == "length":
            status, err = "truncated", None
        else:
            status, err = "ok", None
        return Completion(text=text or (refusal or ""), status=status, finish_reason=finish,
                          input_tokens=getattr(usage, "prompt_tokens", None) if usage else None,
                          output_tokens=getattr(usage, "completion_tokens", None) if usage else None,
                          latency_s=latency, raw=raw, error=err)

    def close(self) -> None:
        self._client.close()
