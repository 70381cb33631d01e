"""A local `transformers` teacher: the offline SmolLM2-135M-Instruct by default, or any model id/path.

Prompts go through the model's chat template. `complete` generates a whole batch at once: requests are
sorted by prompt length and cut into chunks of `batch_size`, each left-padded (so every row's new tokens
start at the same column), which keeps padding small. CPU or GPU.

A self-evaluation's verdict is not left to the sampled text (SmolLM2-135M almost never writes a verdict
line that parses): after the critique is generated, the prompt + critique + "\n" + the verdict stem goes
through one more forward pass per batch and the next-token probabilities of the three verdict words'
first tokens, renormalised over the three, give the verdict (the most likely) and its confidence. The
critique is stored as written, cut before a verdict line of the model's own (the read verdict replaces
it); the completion's `raw["self_eval"]` carries the verdict, confidence, the three probabilities and
`"source": "log-probabilities"`, which the pipeline stores on the `self_evals` row like a replay
teacher's given verdict.
"""

from __future__ import annotations

import re
import time

from mirror_core.teachers.base import Completion, Teacher, TeacherRequest


_NEXT_QUESTION = re.compile(r"\n\s*(?:Question|Q)\s*:")
# A verdict line of the model's own ("Evaluation result: the given answer is ..."): the read verdict
# replaces it and what follows. SmolLM2 also writes "Evaluation result:" as a heading over more critique
# ("Evaluation result: The answer is 20 ..."); that is critique and stays.
_OWN_VERDICT = re.compile(r"[*_\s]*evaluation result\s*[*_]*\s*:?\s*[*_]*\s*the given answer is\b", re.IGNORECASE)
VERDICT_SOURCE = "log-probabilities"
# Part of a self-evaluation request's cache key: answers cached before verdicts were read from
# log-probabilities (text-only, mostly without a verdict) are not reused; CoT requests keep their keys.
_VERDICT_KEY = "verdict-from-logprobs-v1"


def cut_invented_question(text: str) -> str:
    """The text before a next "Question:"/"Q:" the model invents after its answer (issue 13.2)."""
    m = _NEXT_QUESTION.search(text)
    return text[:m.start()].rstrip() if m else text


def split_own_verdict(text: str) -> tuple[str, str]:
    """(the critique before the model's own verdict line, that line and the rest; '' when it has none)."""
    m = _OWN_VERDICT.search(text)
    return (text[:m.start()].rstrip(), text[m.start():].strip()) if m else (text, "")


def verdict_confidence(verdict: str, probs: dict[str, float]) -> float:
    """The stored confidence of a verdict read from probabilities, so that P(correct) as calibration reads
    it (confidence for 'correct', 1 - confidence for 'wrong', 0.5 for 'uncertain';
    evaluation.runner.teacher_calibration) is the model's P(correct) among the three words."""
    if verdict == "correct":
        return probs["correct"]
    if verdict == "wrong":
        return 1.0 - probs["correct"]  # the verdict says "not correct": everything but P(correct)
    return probs["uncertain"]


class LocalTeacher(Teacher):
    provider = "local"
    max_in_flight = 1  # one batch at a time: the model already uses every core
    requests_per_minute = None

    def __init__(self, model: str = "smollm2", *, device: str | None = None, batch_size: int | None = None,
                 dtype=None, threads: int | None = None):
        import os

        import torch

        from mirror_core.students import loading

        # On a CPU shared with other busy processes, torch's spinning worker threads can slow a 135M model
        # twentyfold; MIRROR_TORCH_THREADS (or `threads`) caps them.
        threads = threads or int(os.environ.get("MIRROR_TORCH_THREADS", 0) or 0)
        if threads:
            torch.set_num_threads(threads)
        self.model = model
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.batch_size = batch_size or (32 if self.device.startswith("cuda") else 8)
        self.tokenizer = loading.load_tokenizer(model)
        self.tokenizer.padding_side = "left"
        self.lm = loading.load_causal_lm(model, device=self.device, dtype=dtype)
        self.lm.eval()
        from mirror_core.students.selfeval import verdict_token_ids

        # First token of " correct" / " wrong" / " uncertain" as they follow the stem (leading space);
        # raises when two share one, since their probabilities could not be told apart.
        self.verdict_ids = verdict_token_ids(self.tokenizer)
        import inspect

        # Only the last position's logits are needed; older architectures lack the argument.
        self._keep_arg = "logits_to_keep" in inspect.signature(self.lm.forward).parameters

    @property
    def spec(self) -> str:
        return "local" if self.model == "smollm2" else f"local:{self.model}"

    def content_key(self, req: TeacherRequest) -> str | None:
        return _VERDICT_KEY if (req.meta or {}).get("purpose") == "self_eval" else None

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
        evals = [k for k, r in enumerate(reqs) if (r.meta or {}).get("purpose") == "self_eval"
                 and results[k].status in ("ok", "truncated")]
        if evals:
            self._add_verdicts([texts[k] for k in evals], [results[k] for k in evals])
        return results

    def _add_verdicts(self, prompts: list[str], comps: list[Completion]) -> None:
        """Each self-evaluation's verdict and confidence from the next-token distribution after its
        prompt + critique + the verdict stem: one forward pass for the batch, written into `comps`."""
        from mirror_core import formats

        critiques, tails = zip(*(split_own_verdict(c.text) for c in comps))
        contexts = [p + (c + "\n" if c else "") + formats.VERDICT_STEM for p, c in zip(prompts, critiques)]
        t0 = time.perf_counter()
        try:
            probs = self.verdict_probs(contexts)
        except Exception as exc:  # noqa: BLE001 - recorded on each row like a failed generation
            for c in comps:
                c.status, c.error, c.text, c.raw = "error", f"reading the verdict: {type(exc).__name__}: {exc}", "", None
            return
        spent = time.perf_counter() - t0
        for c, critique, tail, p in zip(comps, critiques, tails, probs):
            verdict = max(p, key=p.get)
            c.text = critique
            c.latency_s = (c.latency_s or 0.0) + spent
            c.raw = {**(c.raw or {}), "verdict_s": round(spent, 4), "self_eval": {
                "verdict": verdict, "confidence": verdict_confidence(verdict, p), "probs": p,
                "source": VERDICT_SOURCE, "stem": formats.VERDICT_STEM, "cut_own_verdict": tail or None}}

    def verdict_probs(self, contexts: list[str]) -> list[dict[str, float]]:
        """P(verdict word) renormalised over the three, for the token after each context (batched)."""
        import torch

        words = list(self.verdict_ids)
        col = torch.tensor([self.verdict_ids[w] for w in words], device=self.device)
        out = []
        for s in range(0, len(contexts), self.batch_size):
            enc = self.tokenizer(contexts[s:s + self.batch_size], return_tensors="pt", padding=True,
                                 add_special_tokens=False).to(self.device)
            # Positions counted from each row's first real token, as generate() does: left padding then
            # changes nothing, and a batch reads the same probabilities as one context alone.
            pos = (enc["attention_mask"].cumsum(-1) - 1).clamp(min=0)
            extra = {"logits_to_keep": 1} if self._keep_arg else {}
            with torch.inference_mode():
                logits = self.lm(**enc, position_ids=pos, use_cache=False, **extra).logits[:, -1, :]
            p = torch.softmax(logits[:, col].float(), dim=-1).cpu()
            out += [{w: float(row[k]) for k, w in enumerate(words)} for row in p]
        return out

    def close(self) -> None:
        del self.lm
