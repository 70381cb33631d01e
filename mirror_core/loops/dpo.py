"""Direct Preference Optimisation (Rafailov et al. 2023) for the critic loop, as a pure loss + a short loop.

Why not TRL's DPOTrainer: importing it alone takes ~10 s on our 2-core CPU and it drags the HF Trainer,
dataset mapping and a second model copy along; the critic loop trains a few dozen pairs per round, for
which that overhead dominates. The loss below is the DPO sigmoid loss exactly as TRL defines it:

    loss = −log σ( β · [ (log π(y_w|x) − log π_ref(y_w|x)) − (log π(y_l|x) − log π_ref(y_l|x)) ] )

The reference model is the policy at the start of the round; its log-probs are computed once, before the
first update, so no second copy of the model is kept.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence


def dpo_loss(policy_chosen_logps, policy_rejected_logps, ref_chosen_logps, ref_rejected_logps,
             beta: float = 0.1):
    """Per-pair DPO loss and implicit rewards.

    All four inputs are float tensors of shape (B,): summed log-probabilities of the chosen / rejected
    completion under the policy and the reference. Returns (losses (B,), chosen_rewards (B,),
    rejected_rewards (B,)), rewards being β·(log π − log π_ref). With policy == reference every loss is log 2.
    """
    import torch.nn.functional as F

    if beta <= 0:
        raise ValueError(f"beta must be > 0, got {beta}")
    chosen_logratio = policy_chosen_logps - ref_chosen_logps
    rejected_logratio = policy_rejected_logps - ref_rejected_logps
    losses = -F.logsigmoid(beta * (chosen_logratio - rejected_logratio))
    return losses, beta * chosen_logratio.detach(), beta * rejected_logratio.detach()


def sequence_logps(model, prompt_ids: Sequence[Sequence[int]], completion_ids: Sequence[Sequence[int]],
                   pad_id: int):
    """Summed log-prob of each completion given its prompt: a (B,) tensor (gradients flow to the model).

    Sequences are right-padded into one batch; only completion positions count.
    """
    import torch

    device = next(model.parameters()).device
    seqs = [list(p) + list(c) for p, c in zip(prompt_ids, completion_ids)]
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long, device=device)
    attn = torch.zeros((len(seqs), width), dtype=torch.long, device=device)
    mask = torch.zeros((len(seqs), width), dtype=torch.bool, device=device)
    for i, (p, s) in enumerate(zip(prompt_ids, seqs)):
        ids[i, :len(s)] = torch.tensor(s, device=device)
        attn[i, :len(s)] = 1
        mask[i, len(p):len(s)] = True
    logits = model(input_ids=ids, attention_mask=attn).logits[:, :-1].float()
    target = ids[:, 1:]
    logp = torch.log_softmax(logits, dim=-1).gather(-1, target.unsqueeze(-1)).squeeze(-1)
    return (logp * mask[:, 1:]).sum(-1)


@dataclass
class DPOPair:
    prompt: str
    chosen: str
    rejected: str


@dataclass
class DPOResult:
    steps: int
    losses: list[float]
    reward_margins: list[float]


def train_dpo(model, tokenizer, pairs: Sequence[DPOPair], *, epochs: int = 1, lr: float = 5e-5,
              beta: float = 0.1, batch_size: int = 4, max_len: int = 256, seed: int = 0,
              on_step=None) -> DPOResult:
    """A few epochs of DPO on `pairs`, updating `model` in place; the reference is the model as given."""
    import torch

    if not pairs:
        return DPOResult(0, [], [])
    torch.manual_seed(seed)
    eos = tokenizer.eos_token or ""
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id

    def enc(text, limit):
        return tokenizer(text, add_special_tokens=False)["input_ids"][:limit]

    p_ids = [enc(p.prompt, max_len // 2) for p in pairs]
    c_ids = [enc(" " + p.chosen.strip() + eos, max_len // 2) for p in pairs]
    r_ids = [enc(" " + p.rejected.strip() + eos, max_len // 2) for p in pairs]
    model.eval()  # no dropout: the reference and the policy must agree exactly at step 0
    with torch.no_grad():
        ref_c = torch.cat([sequence_logps(model, p_ids[i:i + batch_size], c_ids[i:i + batch_size], pad_id)
                           for i in range(0, len(pairs), batch_size)])
        ref_r = torch.cat([sequence_logps(model, p_ids[i:i + batch_size], r_ids[i:i + batch_size], pad_id)
                           for i in range(0, len(pairs), batch_size)])
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr)
    gen = torch.Generator().manual_seed(seed)
    losses, margins, step = [], [], 0
    for _ in range(epochs):
        order = torch.randperm(len(pairs), generator=gen).tolist()
        for i in range(0, len(order), batch_size):
            idx = order[i:i + batch_size]
            pc = sequence_logps(model, [p_ids[j] for j in idx], [c_ids[j] for j in idx], pad_id)
            pr = sequence_logps(model, [p_ids[j] for j in idx], [r_ids[j] for j in idx], pad_id)
            loss_vec, rc, rr = dpo_loss(pc, pr, ref_c[idx], ref_r[idx], beta)
            loss = loss_vec.mean()
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            step += 1
            losses.append(float(loss.detach()))
            margins.append(float((rc - rr).mean()))
            if on_step:
                on_step(step, losses[-1], margins[-1])
    return DPOResult(step, losses, margins)
