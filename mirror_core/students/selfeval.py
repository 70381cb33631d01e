"""The student's self-evaluation of its own CoT: verdict and confidence from one forward pass.

The verdict prompt (`formats.prompt("verdict", ...)`) ends with `formats.VERDICT_STEM`, right before
the verdict word the student was trained to write (" correct." / " wrong." / " uncertain."). The
confidence is P(" correct") renormalised over the three verdict words' first tokens, so it is a
probability among the answers the student knows, whatever mass other tokens get.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from mirror_core import formats
from mirror_core.errors import MirrorError
from mirror_core.students.generate import padded_inference


@dataclass
class SelfEval:
    verdict: str
    confidence: float  # P(correct) among the three verdicts
    probs: dict[str, float]


def verdict_token_ids(tokenizer) -> dict[str, int]:
    """First token of each verdict word as it follows the stem (with its leading space)."""
    ids = {}
    for v in formats.VERDICTS:
        toks = tokenizer(formats.target("verdict", verdict=v), add_special_tokens=False)["input_ids"]
        if not toks:
            raise MirrorError(f"The tokenizer encodes verdict '{v}' as nothing; cannot read self-evaluations.")
        ids[v] = toks[0]
    if len(set(ids.values())) < len(ids):
        raise MirrorError(f"The verdict words share a first token ({ids}); self-evaluation confidence would "
                          "be meaningless with this tokenizer.")
    return ids


def self_evaluate(model, tokenizer, questions: Sequence[str], choices: Sequence[Sequence[str] | None],
                  cots: Sequence[str], *, arch: str = "causal", batch_size: int = 16,
                  max_prompt_tokens: int = 1024) -> list[SelfEval]:
    """The student's verdict on each (question, CoT) pair, batched, one forward pass per batch."""
    import torch

    if not (len(questions) == len(choices) == len(cots)):
        raise ValueError("questions, choices and cots must have the same length")
    ids = verdict_token_ids(tokenizer)
    words = list(ids)
    col = torch.tensor([ids[w] for w in words])
    prompts = [formats.prompt("verdict", q, c, cot) for q, c, cot in zip(questions, choices, cots)]
    device = next(model.parameters()).device
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
    out: list[SelfEval | None] = [None] * len(prompts)
    import inspect

    keep_arg = "logits_to_keep" in inspect.signature(model.forward).parameters
    # Left padding (causal) puts every prompt's last token at position -1.
    with padded_inference(model, tokenizer, arch):
        for start in range(0, len(order), batch_size):
            idx = order[start:start + batch_size]
            enc = tokenizer([prompts[i] for i in idx], return_tensors="pt", padding=True, truncation=True,
                            max_length=max_prompt_tokens).to(device)
            with torch.inference_mode():
                if arch == "causal":
                    # Only the last position's logits are needed: skip projecting every prompt token to the vocabulary.
                    extra = {"logits_to_keep": 1} if keep_arg else {}
                    # Positions counted from each row's first real token, as generate() does. Without them a
                    # left-padded row starts at position = its padding: a model with absolute position
                    # embeddings (GPT-2) then reads another prompt, and a batch disagrees with one prompt alone.
                    pos = (enc["attention_mask"].cumsum(-1) - 1).clamp(min=0)
                    logits = model(**enc, position_ids=pos, use_cache=False, **extra).logits[:, -1, :]
                else:
                    start_id = model.config.decoder_start_token_id
                    dec = torch.full((len(idx), 1), start_id, dtype=torch.long, device=device)
                    logits = model(**enc, decoder_input_ids=dec, use_cache=False).logits[:, -1, :]
            p = torch.softmax(logits[:, col.to(logits.device)].float(), dim=-1).cpu()
            for row, i in enumerate(idx):
                probs = {w: float(p[row, k]) for k, w in enumerate(words)}
                out[i] = SelfEval(max(probs, key=probs.get), probs["correct"], probs)
    return out  # type: ignore[return-value]
