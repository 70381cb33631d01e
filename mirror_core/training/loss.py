"""The multi-task loss, computed without ever holding the batch's full logits.

Small students spend most of their FLOPs and memory on the vocabulary projection (OFFLINE.md). So:
  1. keep only the hidden states at positions that carry a label (question tokens need no logits);
  2. project them to the vocabulary in chunks of `chunk` rows inside one autograd Function that also
     computes the gradient right away (softmax − one-hot), so at most one chunk of logits exists at a
     time, in forward and in backward alike (the "fused linear cross-entropy" idea);
  3. weight every token so the total is Σ_t α_t · mean_{tokens of task t} CE — the per-task means are
     over the whole optimizer step (all micro-batches, all ranks), so gradient accumulation and DDP give
     the same gradient as one big batch.

Shapes: N label positions, H hidden size, V vocabulary, T tasks.
"""

from __future__ import annotations

import torch

IGNORE = -100


def select_labelled(hidden: torch.Tensor, labels: torch.Tensor, task_ids: torch.Tensor, shift: bool):
    """hidden (B, L, H), labels/task_ids (B, L) → h (N, H), targets (N,), tasks (N,).

    shift=True for causal LMs: the state at position i predicts the token at i+1."""
    if shift:
        hidden, labels, task_ids = hidden[:, :-1], labels[:, 1:], task_ids[:, 1:]
    keep = labels != IGNORE
    return hidden[keep], labels[keep], task_ids[keep]


def task_scale(alphas: torch.Tensor, counts: torch.Tensor, world: int = 1) -> torch.Tensor:
    """alphas (T,), counts (T,) label tokens of each task in the whole step (all micro-batches, all ranks)
    → (T,) float32 weight per task, α_t · world / count_t; indexed by each token's task it makes
    Σ w·CE = Σ_t α_t · mean CE_t. The `world` factor undoes DDP's mean of the ranks' gradients, whose
    tokens the counts already include."""
    return (alphas * world / counts.clamp(min=1)).float()


class _LinearCrossEntropy(torch.autograd.Function):
    """loss = Σ_i w_i · CE(h_i W^T + b, y_i), with gradients computed chunk by chunk in forward."""

    @staticmethod
    def forward(ctx, h, weight, bias, targets, w, chunk: int, compute_dtype):
        need_h, need_w = h.requires_grad, weight.requires_grad
        need_b = bias is not None and bias.requires_grad
        n = h.shape[0]
        ce = torch.empty(n, dtype=torch.float32, device=h.device)
        grad_h = torch.empty_like(h) if need_h else None
        grad_w = torch.zeros(weight.shape, dtype=torch.float32, device=weight.device) if need_w else None
        grad_b = torch.zeros(bias.shape, dtype=torch.float32, device=bias.device) if need_b else None
        wc = weight.to(compute_dtype)
        bc = bias.to(compute_dtype) if bias is not None else None
        with torch.autocast(device_type=h.device.type, enabled=False):
            for s in range(0, n, chunk):
                e = min(n, s + chunk)
                hc = h[s:e].to(compute_dtype)
                logits = (hc @ wc.T if bc is None else torch.addmm(bc, hc, wc.T)).float()
                lse = torch.logsumexp(logits, dim=-1)
                tgt = targets[s:e]
                ce[s:e] = lse - logits.gather(1, tgt[:, None]).squeeze(1)
                if need_h or need_w or need_b:
                    # d(w·CE)/dlogits = w · (softmax − onehot), reusing the logits buffer
                    g = logits.sub_(lse[:, None]).exp_()
                    g[torch.arange(e - s, device=g.device), tgt] -= 1.0
                    g.mul_(w[s:e, None])
                    gc = g.to(compute_dtype)
                    if need_h:
                        grad_h[s:e] = (gc @ wc).to(h.dtype)
                    if need_w:
                        grad_w += (gc.T @ hc).float()
                    if need_b:
                        grad_b += g.sum(0)
        ctx.save_for_backward(grad_h if need_h else None, grad_w if need_w else None, grad_b if need_b else None)
        ctx.dtypes = (weight.dtype, bias.dtype if bias is not None else None)
        ctx.mark_non_differentiable(ce)
        return (ce * w).sum(), ce

    @staticmethod
    def backward(ctx, grad_loss, _grad_ce):
        grad_h, grad_w, grad_b = ctx.saved_tensors
        wdt, bdt = ctx.dtypes
        return (grad_h * grad_loss.to(grad_h.dtype) if grad_h is not None else None,
                (grad_w * grad_loss).to(wdt) if grad_w is not None else None,
                (grad_b * grad_loss).to(bdt) if grad_b is not None else None,
                None, None, None, None)


def linear_cross_entropy(h: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, targets: torch.Tensor,
                         w: torch.Tensor, chunk: int = 1024, compute_dtype: torch.dtype | None = None):
    """h (N, H), weight (V, H), bias (V,) or None, targets (N,), w (N,) → (Σ w·CE scalar, CE (N,) detached).

    compute_dtype: matmul precision (bf16 on GPU); the softmax is always fp32."""
    if h.shape[0] == 0:
        zero = (h.sum() + weight.sum() * 0.0) * 0.0  # keeps the graph (and DDP's bucket hooks) connected
        return zero.float(), torch.zeros(0, device=h.device)
    return _LinearCrossEntropy.apply(h, weight, bias, targets, w.float(), int(chunk), compute_dtype or h.dtype)


def per_task(ce: torch.Tensor, tasks: torch.Tensor, n_tasks: int) -> tuple[torch.Tensor, torch.Tensor]:
    """ce (N,), tasks (N,) → (sum of CE per task (T,), token count per task (T,)), both float64 for logging."""
    sums = torch.zeros(n_tasks, dtype=torch.float64, device=ce.device).index_add_(0, tasks, ce.double())
    counts = torch.bincount(tasks, minlength=n_tasks).double()
    return sums, counts
