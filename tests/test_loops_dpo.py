"""DPO loss math and a short real training step on the tiny model."""

from __future__ import annotations

import math

import pytest
import torch

from mirror_core.loops import dpo


def test_identical_policy_and_reference_give_log2():
    x = torch.tensor([-12.0, -3.5, -40.0])
    y = torch.tensor([-10.0, -9.0, -1.0])
    losses, rc, rr = dpo.dpo_loss(x, y, x.clone(), y.clone(), beta=0.1)
    assert losses.shape == (3,)
    assert torch.allclose(losses, torch.full((3,), math.log(2)))
    assert torch.all(rc == 0) and torch.all(rr == 0)


def test_loss_matches_formula_and_falls_when_chosen_gains():
    pc, pr, rc, rr = (torch.tensor([v]) for v in (-5.0, -9.0, -6.0, -8.0))
    beta = 0.5
    losses, crew, rrew = dpo.dpo_loss(pc, pr, rc, rr, beta)
    margin = beta * ((-5 + 6) - (-9 + 8))
    assert float(losses[0]) == pytest.approx(-math.log(1 / (1 + math.exp(-margin))))
    assert float(crew[0]) == pytest.approx(0.5) and float(rrew[0]) == pytest.approx(-0.5)
    assert float(losses[0]) < math.log(2)
    worse, _, _ = dpo.dpo_loss(rc, pr + 3, rc, rr, beta)  # rejected gained instead
    assert float(worse[0]) > math.log(2)
    with pytest.raises(ValueError):
        dpo.dpo_loss(pc, pr, rc, rr, beta=0)


def test_sequence_logps_ignore_padding_and_prompt():
    from mirror_core.students import loading

    tok = loading.load_tokenizer("tiny")
    model = loading.tiny_causal_lm(tok).eval()
    p, c = tok("Q: hi", add_special_tokens=False)["input_ids"], tok(" there", add_special_tokens=False)["input_ids"]
    long_c = tok(" there friend of mine", add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        alone = dpo.sequence_logps(model, [p], [c], tok.pad_token_id)
        batched = dpo.sequence_logps(model, [p, p], [c, long_c], tok.pad_token_id)
    assert torch.allclose(alone[0], batched[0], atol=1e-4)
    assert batched[1] < batched[0]  # more tokens, more negative log-prob


def test_train_dpo_moves_the_policy_toward_chosen():
    from mirror_core.students import loading

    tok = loading.load_tokenizer("tiny")
    model = loading.tiny_causal_lm(tok)
    pairs = [dpo.DPOPair(f"Joke {i}:", "a duck walks into a bar", "the the the the the") for i in range(4)]
    before = [p.detach().clone() for p in model.parameters()]
    res = dpo.train_dpo(model, tok, pairs, epochs=3, lr=5e-3, beta=0.5, batch_size=2)
    assert res.steps == 6
    assert res.losses[0] == pytest.approx(math.log(2), abs=1e-3)  # step 0: policy == reference
    assert res.losses[-1] < res.losses[0] and res.reward_margins[-1] > 0
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))
    assert dpo.train_dpo(model, tok, [], epochs=1).steps == 0
