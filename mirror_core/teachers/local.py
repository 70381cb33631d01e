"""A local `transformers` teacher: the offline SmolLM2-135M-Instruct by default, or any model id/path.

Prompts go through the model's chat template. `complete` generates a whole batch at once: requests are
sorted by prompt length and cut into chunks of `batch_size`, each left-padded (so every row's new tokens
start at the same column), which keeps padding small. CPU or GPU.
"""

from __future__ import annotations

import re
import time

from mirror_core.teachers.base import Completion, Teacher, TeacherRequest


_NEXT_QUESTION = re.compile(r"\n\s*(?:Question|Q)\s*:")


def cut_invented_question(text: str) -> str:
    """The text before a next "Question:"/"Q:" the model invents after its answer (issue 13.2)."""
    m = _NEXT_QUESTION.search(text)
    return text[:m.start()].rstrip() if m else text


class LocalTeacher(Teacher):
    provider = "local"
    max_in_flight = 1  # one batch at a time: the model already uses every core
    requests_per_minute = None

    def __init__(self, model: str = "smollm2", *, device: str | None = None, batch_size: int | None = None,
                 dtype=None, threads: int | None = None):
        import os

        import torch

        from mirror_core import models

        # On a CPU shared with other busy processes, torch's spinning worker threads can slow a 135M model
        # twentyfold; MIRROR_TORCH_THREADS (or `threads`) caps them.
        threads = threads or int(os.environ.get("MIRROR_TORCH_THREADS", 0) or 0)
        if threads:
            torch.set_num_threads(threads)
        self.model = model
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.batch_size = batch_size or (32 if self.device.startswith("cuda") else 8)
        self.tokenizer = models.load_tokenizer(model)
        self.tokenizer.padding_side = "left"
        self.lm = models.load_causal_lm(model, device=self.device, dtype=dtype)
        self.lm.eval()

    @property
    def spec(self) -> str:
        return "local" if self.model == "smollm2" else f"local:{self.model}"

    def render(self, req: TeacherRequest) -> str:
        tok = self.tokenizer
        if getattr(tok, "chat_template", None):
            return tok.apply_chat_template([dict(m) for m in req.messages], add_generation_prompt=True,
                                           tokenize=False)
        return "\n\n".join(m["content"] for m in req.messages) + "\n"

    def complete(self, requests: list[TeacherRequest]) -> list[Completion]:
        texts = [self.render(r) for r in requests]
        lengths = [len(self.tokenizer(t, add_special_tokens=False)["input_ids"]) for t in texts]
        out: list[Completion | None] = [None] * len(requests)
        # Only requests with equal sampling settings can share one generate() call.
        groups: dict[tuple, list[int]] = {}
        for i, r in enumerate(requests):
            groups.setdefault((r.params.temperature, r.params.max_tokens), []).append(i)
        for (temperature, max_tokens), idx in groups.items():
            idx.sort(key=lambda i: lengths[i])
            for s in range(0, len(idx), self.batch_size):
                chunk = idx[s:s + self.batch_size]
                for i, c in zip(chunk, self._generate([texts[i] for i in chunk], [requests[i] for i in chunk],
                                                      temperature, max_tokens)):
                    out[i] = c
        return out  # type: ignore[return-value]

    def _generate(self, texts, reqs, temperature, max_tokens) -> list[Completion]:
        import torch

        tok = self.tokenizer
        t0 = time.perf_counter()
        try:
            enc = tok(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(self.device)
            # One seed per batch from its requests' seeds and sample indices: reproducible runs.
            seed = sum((r.params.seed or 0) * 1000003 + r.params.sample_index for r in reqs) % (2**31)
            torch.manual_seed(seed)
            kwargs = dict(max_new_tokens=max_tokens, pad_token_id=tok.pad_token_id,
                          eos_token_id=tok.eos_token_id)
            if temperature > 0:
                kwargs.update(do_sample=True, temperature=temperature, top_p=0.95)
            else:
                kwargs.update(do_sample=False)
            with torch.inference_mode():
                gen = self.lm.generate(**enc, **kwargs)
        except Exception as exc:  # noqa: BLE001 - e.g. out of memory: recorded on every row of the batch
            return [Completion(status="error", error=f"{type(exc).__name__}: {exc}",
                               latency_s=time.perf_counter() - t0) for _ in reqs]
        latency = time.perf_counter() - t0
        new = gen[:, enc["input_ids"].shape[1]:]
        results = []
        for row, mask in zip(new.tolist(), enc["attention_mask"].tolist()):
            stopped = tok.eos_token_id in row
            n_out = row.index(tok.eos_token_id) + 1 if stopped else len(row)
            text = cut_invented_question(tok.decode(row[:n_out], skip_special_tokens=True).strip())
            results.append(Completion(
                text=text, status="ok" if stopped else "truncated", finish_reason="stop" if stopped else "length",
                input_tokens=int(sum(mask)), output_tokens=n_out, latency_s=latency,
                raw={"model": self.model, "device": self.device, "batch": len(reqs)}))
        return results

    def close(self) -> None:
        del self.lm
