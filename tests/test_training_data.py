"""Examples per task, tokenization, packing: packed rows must train exactly like separate examples."""

import pytest
import torch

from mirror_core import formats
from mirror_core.students import loading
from mirror_core.training import data, loop
from mirror_core.training.config import TrainConfig
from training_fixtures import make_snapshot


@pytest.fixture(scope="module")
def tok():
    return loading.load_tokenizer("tiny")


@pytest.fixture
def items(conn):
    return data.load_items(conn, make_snapshot(conn, n_train=6, n_dev=2, long=True))


def test_examples_per_task_and_split(items):
    ex = data.build_examples(items, ["answer", "cot", "verdict", "critique"], "train")
    by = {t: sum(e.task == t for e in ex) for t in formats.TASKS}
    assert by == {"answer": 6, "cot": 6, "verdict": 12, "critique": 12}  # 2 self-evaluations per CoT
    assert all(e.example_id in {i["example_id"] for i in items if i["split"] == "train"} for e in ex)
    v = next(e for e in ex if e.task == "verdict")
    assert v.prompt.endswith(formats.VERDICT_STEM) and v.target == " correct."


def test_labels_mask_the_prompt_and_end_in_eos(items, tok):
    ex = data.build_examples(items, ["answer"], "train")[:1]
    (t,) = data.tokenize(ex, tok, "causal", 512)
    n_prompt = len(tok(ex[0].prompt).input_ids)
    assert t.labels[:n_prompt] == [data.IGNORE] * n_prompt
    assert t.labels[n_prompt:] == t.input_ids[n_prompt:] and t.labels[-1] == tok.eos_token_id
    assert tok.decode(t.input_ids[n_prompt:-1]) == ex[0].target


def test_too_long_examples_keep_prefix_stem_and_target(items, tok):
    ex = [e for e in data.build_examples(items, ["verdict"], "train")][:1]
    (t,) = data.tokenize(ex, tok, "causal", 64)
    assert len(t.input_ids) <= 64
    text = tok.decode(t.input_ids)
    assert text.startswith("[verdict]") and text.endswith(formats.VERDICT_STEM + ex[0].target + tok.eos_token)


def test_packing_restarts_positions_and_is_deterministic(items, tok):
    toks = data.tokenize(data.build_examples(items, ["answer", "cot"], "train"), tok, "causal", 256)
    kw = dict(arch="causal", packing=True, seq_len=256, batch_tokens=512, pad_id=tok.pad_token_id, seed=3)
    b1, b2 = data.make_batches(toks, epoch=0, **kw), data.make_batches(toks, epoch=0, **kw)
    assert all(torch.equal(x["input_ids"], y["input_ids"]) for x, y in zip(b1, b2))
    assert not all(torch.equal(x["input_ids"], y["input_ids"]) for x, y in zip(b1, data.make_batches(toks, epoch=1, **kw)))
    assert sum(b["n_examples"] for b in b1) == len(toks)
    assert sum(b["n_tokens"] for b in b1) == sum(len(t.input_ids) for t in toks)
    starts = sum(int((b["position_ids"] == 0).sum()) for b in b1)
    assert starts >= len(toks)  # one restart per example (plus one per padded tail)
    labelled = sum(int((b["labels"] != data.IGNORE).sum()) for b in b1)
    assert labelled == sum(sum(l != data.IGNORE for l in t.labels) for t in toks)


def test_packed_and_unpacked_batches_give_the_same_loss(items, tok):
    """Same examples, packed into shared rows vs padded one per row: per-task losses agree, which also
    shows that packed examples do not attend to each other."""
    torch.manual_seed(0)
    model = loading.tiny_causal_lm(tok, layers=1, hidden=32).eval()
    module = loop.StudentLoss(model, "causal", chunk=97, compute_dtype=torch.float32)
    toks = data.tokenize(data.build_examples(items, ["answer", "cot", "verdict"], "train")[:12], tok, "causal", 256)
    cfg_common = dict(arch="causal", seq_len=256, pad_id=tok.pad_token_id, seed=0, epoch=0)
    packed = data.make_batches(toks, packing=True, batch_tokens=512, **cfg_common)
    padded = data.make_batches(toks, packing=False, batch_tokens=512, **cfg_common)
    # Packing really packed: some row holds more than one example, so fewer batches carry the same examples.
    assert any(b["n_examples"] > b["input_ids"].shape[0] for b in packed)
    assert len(packed) < len(padded)

    def task_means(batches):
        sums, counts = torch.zeros(4, dtype=torch.float64), torch.zeros(4, dtype=torch.float64)
        with torch.no_grad():
            for b in batches:
                _, ce, tk = module({k: v for k, v in b.items() if torch.is_tensor(v)}, torch.ones(4))
                s, c = loop.L.per_task(ce, tk, 4)
                sums, counts = sums + s, counts + c
        return sums / counts.clamp(min=1), counts

    (mp, cp), (mu, cu) = task_means(packed), task_means(padded)
    assert torch.equal(cp, cu)
    assert torch.allclose(mp, mu, atol=1e-4), (mp, mu)
    # Control: the same packed rows with a plain causal mask (examples see each other) differ.
    # Compared token by token: with a random tiny model the leak moves each token's loss a little and
    # the task means hardly at all, so the means alone would make a weak control.
    leaky = [{**b, "position_ids": torch.arange(b["input_ids"].shape[1]).expand_as(b["input_ids"])} for b in packed]

    def token_losses(batches):
        with torch.no_grad():
            return torch.cat([module({k: v for k, v in b.items() if torch.is_tensor(v)}, torch.ones(4))[1]
                              for b in batches])

    diff = (token_losses(leaky) - token_losses(packed)).abs().max()
    assert diff > 1e-3, diff


def test_config_presets_and_range_checks():
    assert TrainConfig(student="tiny", method="step-by-step").weights == {"answer": 0.5, "cot": 0.5}
    assert TrainConfig(student="tiny", method="answer-only").tasks == ["answer"]
    c = TrainConfig(student="tiny", schedule="two-stage")
    assert c.stages() == [["verdict", "critique"], ["answer", "cot"]]
    assert TrainConfig(student="t5-tiny").arch == "seq2seq" and TrainConfig(student="t5-tiny").packing is False
    from mirror_core.errors import TrainingError
    for bad in (dict(tasks=["answer", "poem"]), dict(lr=-1.0), dict(method="x"), dict(schedule="two-stage",
                tasks=["answer"]), dict(weights={"answer": 0.0}), dict(student="t5-tiny", packing=True)):
        with pytest.raises(TrainingError):
            TrainConfig(**{"student": "tiny", **bad})
    with pytest.raises(TrainingError, match=r"Unknown training setting\(s\) learning_rate; known: "):
        TrainConfig.from_dict({"student": "tiny", "learning_rate": 1.0})
    assert TrainConfig.from_dict(c.to_dict()) == c
