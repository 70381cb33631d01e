"""Anthropic teacher through the official `anthropic` SDK (Messages API).

This SDK's Messages API takes no sampling parameters (no temperature or seed): the N samples of a
prompt come from the model's own default sampling, and `sample_index` keeps them distinct requests in the
cache. `send_temperature=True` passes the temperature in the request body for servers that still take it.
The SDK's own retries are off (max_retries=0): `generation.calls` retries with backoff honouring
Retry-After and records every attempt on the call's row.
"""

from __future__ import annotations

import time

from mirror_core.teachers import keys
from mirror_core.teachers.base import (Completion, Teacher, TeacherRequest, completion_from_sdk_error,
                                       split_system)

DEFAULT_TIMEOUT_S = 120.0


class AnthropicTeacher(Teacher):
    provider = "anthropic"
    max_in_flight = 8
    requests_per_minute = 50

    def __init__(self, model: str, *, api_key: str | None = None, base_url: str | None = None,
                 timeout_s: float = DEFAULT_TIMEOUT_S, send_temperature: bool = False):
        import anthropic

        self.send_temperature = send_temperature
        self.model = model
        self.base_url = base_url
        self._client = anthropic.Anthropic(api_key=keys.get_key("anthropic", api_key), base_url=base_url,
                                           max_retries=0, timeout=timeout_s)

    def complete(self, requests: list[TeacherRequest]) -> list[Completion]:
        return [self._one(r) for r in requests]

    def _one(self, req: TeacherRequest) -> Completion:
        system, turns = split_system(req.messages)
        kwargs = dict(model=self.model, messages=turns, max_tokens=req.params.max_tokens)
        if self.send_temperature:
            kwargs["extra_body"] = {"temperature": min(req.params.temperature, 1.0)}  # their range is 0..1
        if system:
            kwargs["system"] = system
        t0 = time.perf_counter()
        try:
            msg = self._client.messages.create(**kwargs)
        except Exception as exc:  # noqa: BLE001 - every failure becomes a recorded status
            return completion_from_sdk_error(exc, time.perf_counter() - t0)
        latency = time.perf_counter() - t0
        try:
            raw = msg.model_dump(mode="json")
            text = "".join(getattr(b, "text", "") or "" for b in (msg.content or []) if getattr(b, "type", "") == "text")
            stop = msg.stop_reason
            usage = msg.usage
            in_tok = getattr(usage, "input_tokens", None) if usage else None
            out_tok = getattr(usage, "output_tokens", None) if usage else None
        except Exception as exc:  # noqa: BLE001 - a reply missing its fields is malformed, not a crash
            return Completion(status="error", error=f"malformed response: {type(exc).__name__}: {exc}",
                              latency_s=latency)
        if msg.content is None or stop is None:
            return Completion(status="error", error="malformed response: no content or stop_reason",
                              latency_s=latency, raw=raw)
        status = {"refusal": "refused", "max_tokens": "truncated"}.get(stop, "ok")
        return Completion(text=text, status=status, finish_reason=stop, input_tokens=in_tok,
                          output_tokens=out_tok, latency_s=latency, raw=raw,
                          error="the model refused" if status == "refused" else None)

    def close(self) -> None:
        self._client.close()
