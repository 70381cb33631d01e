"""The student's self-evaluation reads the same verdict probabilities in a padded batch as alone."""

from __future__ import annotations

import pytest

from mirror_core.students import loading, selfeval

QUESTIONS = ["What is 2 + 2?", "Tom has 3 apples and buys 4 bags of 5 apples each. How many apples has he now?",
             "Pick one", "Is 7 prime?"]
CHOICES = [None, None, ["x", "y"], None]
COTS = ["2 + 2 = 4. The answer is 4.", "4 * 5 = 20 and 3 + 20 = 23. The answer is 23.", "x",
        "7 has no divisor but 1 and itself. The answer is yes."]


def _gpt2(tok):
    """A tiny random GPT-2: absolute position embeddings, so a row read at shifted positions reads differently."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    cfg = GPT2Config(vocab_size=len(tok), n_positions=512, n_embd=64, n_layer=2, n_head=4,
                     bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    return GPT2LMHeadModel(cfg).eval()


@pytest.mark.parametrize("build", ["llama", "gpt2"])
def test_batched_self_evaluation_equals_one_at_a_time(build):
    import torch

    torch.set_num_threads(1)  # the CPU is shared
    tok = loading.load_tokenizer("tiny")
    model = loading.tiny_causal_lm(tok) if build == "llama" else _gpt2(tok)
    lengths = {len(tok(q + c)["input_ids"]) for q, c in zip(QUESTIONS, COTS)}
    assert len(lengths) == len(QUESTIONS)  # every row of the batch is padded differently
    batched = selfeval.self_evaluate(model, tok, QUESTIONS, CHOICES, COTS, batch_size=len(QUESTIONS))
    single = selfeval.self_evaluate(model, tok, QUESTIONS, CHOICES, COTS, batch_size=1)
    for b, s in zip(batched, single):
        assert b.probs == pytest.approx(s.probs, abs=1e-4)
        assert b.verdict == s.verdict
