"""Math tests of the chunked cross-entropy: same value and gradients as the textbook loss."""

import pytest
import torch
import torch.nn.functional as F

from mirror_core.training import loss as L


def _reference(h, W, b, y, w):
    logits = h @ W.T + (b if b is not None else 0)
    ce = F.cross_entropy(logits.float(), y, reduction="none")
    return (ce * w).sum(), ce


@pytest.mark.parametrize("chunk,bias", [(3, False), (16, True), (1000, False)])
def test_value_and_gradients_match_full_logits(chunk, bias):
    torch.manual_seed(0)
    N, H, V = 37, 8, 50
    h1 = torch.randn(N, H, dtype=torch.float64, requires_grad=True)
    W1 = torch.randn(V, H, dtype=torch.float64, requires_grad=True)
    b1 = torch.randn(V, dtype=torch.float64, requires_grad=True) if bias else None
    y = torch.randint(0, V, (N,))
    w = torch.rand(N, dtype=torch.float64)
    h2, W2 = h1.detach().clone().requires_grad_(), W1.detach().clone().requires_grad_()
    b2 = b1.detach().clone().requires_grad_() if bias else None

    ref, ref_ce = _reference(h1, W1, b1, y, w)
    (ref * 2.5).backward()
    got, ce = L.linear_cross_entropy(h2, W2, b2, y, w, chunk=chunk, compute_dtype=torch.float64)
    (got * 2.5).backward()  # a scaled upstream gradient must scale every input gradient
    assert torch.allclose(got.double(), ref, atol=1e-5)
    assert torch.allclose(ce.double(), ref_ce.double(), atol=1e-5)
    assert not ce.requires_grad
    assert torch.allclose(h2.grad, h1.grad, atol=1e-5)
    assert torch.allclose(W2.grad, W1.grad, atol=1e-5)
    if bias:
        assert torch.allclose(b2.grad, b1.grad, atol=1e-5)


def test_frozen_head_gets_no_gradient_and_confident_logits_give_zero_loss():
    V, H = 10, 10
    W = torch.eye(V) * 50.0  # logits = 50 · onehot(h) → softmax puts all mass on the argmax
    y = torch.arange(V)
    h = torch.eye(V).requires_grad_()
    total, ce = L.linear_cross_entropy(h, W, None, y, torch.ones(V), chunk=4)
    assert float(total.detach()) < 1e-6 and ce.max() < 1e-6
    total.backward()
    assert W.grad is None and h.grad is not None


def test_task_scale_gives_alpha_weighted_task_means():
    ce = torch.tensor([1.0, 3.0, 2.0, 4.0, 6.0])
    tasks = torch.tensor([0, 0, 1, 1, 1])
    alphas = torch.tensor([0.5, 2.0, 1.0, 1.0], dtype=torch.float64)
    counts = torch.bincount(tasks, minlength=4).double()
    w = L.task_scale(alphas, counts)
    assert w.dtype == torch.float32
    assert torch.isclose((w[tasks] * ce).sum(), torch.tensor(0.5 * 2.0 + 2.0 * 4.0))  # 0.5·mean(1,3) + 2·mean(2,4,6)
    # Two ranks, each with its share of the tokens: DDP averages their gradients, so the × world makes the
    # mean of the two ranks' losses the one-process loss.
    w2 = L.task_scale(alphas, counts, world=2)
    ranks = [(w2[tasks[:3]] * ce[:3]).sum(), (w2[tasks[3:]] * ce[3:]).sum()]
    assert torch.isclose(sum(ranks) / 2, torch.tensor(0.5 * 2.0 + 2.0 * 4.0))
    sums, n = L.per_task(ce, tasks, 4)
    assert sums.tolist() == [4.0, 12.0, 0.0, 0.0] and n.tolist() == [2, 3, 0, 0]


def test_select_labelled_shifts_for_causal_models():
    hidden = torch.arange(2 * 4, dtype=torch.float32).view(2, 4, 1)
    labels = torch.tensor([[-100, -100, 7, 8], [-100, 5, -100, -100]])
    tasks = torch.tensor([[-1, -1, 1, 1], [-1, 2, -1, -1]])
    h, y, t = L.select_labelled(hidden, labels, tasks, shift=True)
    assert h.flatten().tolist() == [1.0, 2.0, 4.0]  # the state before each label predicts it
    assert y.tolist() == [7, 8, 5] and t.tolist() == [1, 1, 2]


def test_empty_selection_keeps_the_graph():
    h = torch.zeros(0, 4, requires_grad=True)
    W = torch.randn(6, 4, requires_grad=True)
    total, ce = L.linear_cross_entropy(h, W, None, torch.zeros(0, dtype=torch.long), torch.zeros(0))
    total.backward()
    assert float(total) == 0.0 and W.grad is not None and ce.numel() == 0
