"""A local HTTP stand-in for the Anthropic and OpenAI APIs, for tests of the real SDKs (127.0.0.1 only).

Behaviour is chosen by a marker in the last user message:
  [429]  first attempt: 429 with Retry-After: 1       [500]  first attempt: 500
  [500x] always 500                                   [slow] first attempt sleeps past the client timeout
  [malformed] a 200 whose body is not JSON            [refuse] a refusal
Everything else gets a normal answer. Each request's attempts are counted by a key of its body.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

USAGE_IN, USAGE_OUT = 10, 20


class Stub:
    def __init__(self, slow_s: float = 1.5):
        self.slow_s = slow_s
        self.requests: list[dict] = []  # {path, key, t, auth}
        self.lock = threading.Lock()
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):  # keep test output quiet
                pass

            def do_POST(self):
                n = int(self.headers.get("content-length", 0))
                body = json.loads(self.rfile.read(n) or b"{}")
                stub.handle(self, body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()

    def attempts(self, marker: str, purpose: str = "cot") -> list[float]:
        return [r["t"] for r in self.requests if marker in r["text"] and r["purpose"] == purpose]

    # ------------------------------------------------------------------
    def handle(self, h, body: dict) -> None:
        msgs = body.get("messages", [])
        text = msgs[-1]["content"] if msgs else ""
        key = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
        purpose = "self_eval" if "Proposed reasoning" in text else "cot"
        # The marker is the question's; a self-evaluation quotes the question, so markers apply to both.
        with self.lock:
            n_before = sum(1 for r in self.requests if r["key"] == key)
            self.requests.append({"path": h.path, "key": key, "t": time.monotonic(), "text": text,
                                  "purpose": purpose,
                                  "auth": h.headers.get("x-api-key") or h.headers.get("authorization", "")})
        first = n_before == 0
        if "[429]" in text and first:
            return self._send(h, 429, {"error": {"type": "rate_limit_error", "message": "slow down"}},
                              {"Retry-After": "1"})
        if ("[500]" in text and first) or "[500x]" in text:
            return self._send(h, 500, {"error": {"type": "api_error", "message": "boom"}})
        if "[slow]" in text and first:
            time.sleep(self.slow_s)
        if "[malformed]" in text:
            return self._send_raw(h, 200, b"{this is not json", "application/json")
        refuse = "[refuse]" in text
        if purpose == "self_eval":
            answer = "Each step checks out.\nEvaluation result: the given answer is correct\nConfidence: 0.9"
        else:
            answer = "2 plus 3 makes 5.\nThe answer is 5."
        if h.path.endswith("/messages"):
            payload = {"id": "msg_1", "type": "message", "role": "assistant", "model": body.get("model"),
                       "content": [] if refuse else [{"type": "text", "text": answer}],
                       "stop_reason": "refusal" if refuse else "end_turn", "stop_sequence": None,
                       "usage": {"input_tokens": USAGE_IN, "output_tokens": USAGE_OUT}}
        else:
            payload = {"id": "cmpl_1", "object": "chat.completion", "created": 0, "model": body.get("model"),
                       "choices": [{"index": 0, "finish_reason": "stop",
                                    "message": {"role": "assistant", "content": None if refuse else answer,
                                                "refusal": "I can't help with that." if refuse else None}}],
                       "usage": {"prompt_tokens": USAGE_IN, "completion_tokens": USAGE_OUT,
                                 "total_tokens": USAGE_IN + USAGE_OUT}}
        self._send(h, 200, payload)

    def _send(self, h, code, payload, headers=None):
        self._send_raw(h, code, json.dumps(payload).encode(), "application/json", headers)

    def _send_raw(self, h, code, data: bytes, ctype: str, headers=None):
        try:
            h.send_response(code)
            h.send_header("content-type", ctype)
            h.send_header("content-length", str(len(data)))
            for k, v in (headers or {}).items():
                h.send_header(k, v)
            h.end_headers()
            h.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client timed out and left
