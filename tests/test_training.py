"""The loop on a tiny real model (SmolLM2 tokenizer, Llama from a config): trains, logs per task,
checkpoints, resumes exactly, runs the two-stage schedule from stage 1's weights."""

import pytest
import torch

from mirror_core.students import checkpoints, loading
from mirror_core.training import data, loop
from mirror_core.training.config import TrainConfig
from training_fixtures import make_snapshot

FAST = dict(student="tiny", seq_len=256, batch_tokens=512, eval_every=2, warmup_ratio=0.2)


@pytest.fixture
def items(conn):
    return data.load_items(conn, make_snapshot(conn, n_train=8, n_dev=2))


def _weights(model):
    return {k: v.detach().clone() for k, v in checkpoints.unwrap(model).state_dict().items()}


def test_five_steps_log_per_task_change_weights_and_checkpoint_loads(items, tmp_path):
    cfg = TrainConfig(max_steps=5, **FAST)
    init = loading.tiny_causal_lm(seed=cfg.seed)
    rep = loop.QuietReporter()
    summary = loop.train(cfg, items, rep, tmp_path, snapshot_id=7)
    steps = [s for s, v in rep.metrics if "loss" in v]
    assert steps == [1, 2, 3, 4, 5] and summary["global_step"] == 5
    logged = {k for _, v in rep.metrics for k in v}
    assert {"loss/answer", "loss/cot", "loss/verdict", "loss/critique", "lr", "tokens_per_s", "mem",
            "dev/loss"} <= logged
    dev = [h["dev_loss"] for h in summary["history"]]
    assert len(dev) == 3 and dev[-1] < dev[0]  # lr 1e-3 on a tiny model: five steps already lower it

    model, tok, meta = checkpoints.load_for_inference(tmp_path, device="cpu")
    assert meta["checkpoint"] == "best" and meta["student"] == "tiny" and meta["snapshot_id"] == 7
    assert meta["tasks"] == ["answer", "cot", "verdict", "critique"] and meta["arch"] == "causal"
    trained = model.state_dict()
    changed = [k for k, v in init.state_dict().items() if not torch.allclose(v, trained[k])]
    assert "model.embed_tokens.weight" in changed and any("layers.1.mlp" in k for k in changed)
    ids = tok("[answer] Question: 2+2?\nAnswer:", return_tensors="pt").input_ids
    assert model.generate(ids, max_new_tokens=3, do_sample=False).shape[1] == ids.shape[1] + 3
    state = checkpoints.load_trainer_state(tmp_path / "checkpoints" / "last")
    assert state["finished"] and state["global_step"] == 5


def test_stop_and_resume_continue_exactly(items, tmp_path):
    cfg = TrainConfig(max_steps=6, **FAST)
    straight = loop.train(cfg, items, loop.QuietReporter(), tmp_path / "a")

    first = loop.train(cfg, items, loop.QuietReporter(stop_after=3), tmp_path / "b")
    assert first == {"stopped": True, "global_step": 3}
    st = checkpoints.load_trainer_state(tmp_path / "b" / "checkpoints" / "last")
    assert st["step"] == 3 and len(st["optimizer"]["state"]) > 0 and st["scheduler"]["last_epoch"] == 3
    rep = loop.QuietReporter()
    resumed = loop.train(cfg, items, rep, tmp_path / "b")
    assert [s for s, v in rep.metrics if "loss" in v] == [4, 5, 6]  # the step count continues
    assert resumed["global_step"] == 6
    wa = checkpoints.load_model(tmp_path / "a/checkpoints/last", {"arch": "causal"}, "cpu").state_dict()
    wb = checkpoints.load_model(tmp_path / "b/checkpoints/last", {"arch": "causal"}, "cpu").state_dict()
    # Same data order, optimizer moments, lr schedule and RNG ⇒ the same weights as a straight run.
    assert all(torch.allclose(wa[k], wb[k], atol=1e-6) for k in wa)
    # The same evaluations at the same steps, and dev losses equal to float noise (the weights are, above).
    assert [(h["step"], h["stage"]) for h in resumed["history"]] == [(h["step"], h["stage"]) for h in straight["history"]]
    assert [h["dev_loss"] for h in resumed["history"]] == pytest.approx([h["dev_loss"] for h in straight["history"]],
                                                                        abs=1e-5)


def test_two_stage_starts_stage_two_from_stage_one_weights(items, tmp_path):
    cfg = TrainConfig(max_steps=3, schedule="two-stage", **FAST)
    rep = loop.QuietReporter()
    summary = loop.train(cfg, items, rep, tmp_path)
    stage1 = checkpoints.load_model(tmp_path / "checkpoints/stage1", {"arch": "causal"}, "cpu")
    fp1, fp2 = summary["stage_start_fingerprints"]
    assert fp2 == pytest.approx(loop.fingerprint(stage1), rel=1e-12)  # stage 2 began from stage 1's end
    assert fp1 == pytest.approx(loop.fingerprint(loading.tiny_causal_lm(seed=0)), rel=1e-12)
    assert fp1 != pytest.approx(fp2, rel=1e-9)
    by_step = {s: v for s, v in rep.metrics if "loss" in v}
    assert sorted(by_step) == [1, 2, 3, 4, 5, 6]
    assert all(set(k for k in by_step[s] if k.startswith("loss/")) <= {"loss/verdict", "loss/critique"} for s in (1, 2, 3))
    assert all(set(k for k in by_step[s] if k.startswith("loss/")) <= {"loss/answer", "loss/cot"} for s in (4, 5, 6))
    assert checkpoints.load_meta(tmp_path / "checkpoints/best")["step"] > 3  # best is chosen in the final stage


def test_seq2seq_and_lora_students_train(items, tmp_path):
    s2s = loop.train(TrainConfig(student="t5-tiny", max_steps=2, seq_len=256, batch_tokens=512, method="step-by-step"),
                     items, loop.QuietReporter(), tmp_path / "t5")
    assert s2s["global_step"] == 2
    model, tok, meta = checkpoints.load_for_inference(tmp_path / "t5", device="cpu")
    assert meta["arch"] == "seq2seq" and model.config.is_encoder_decoder
    lora = loop.train(TrainConfig(lora=True, lora_r=4, max_steps=2, method="answer-only", **FAST), items,
                      loop.QuietReporter(), tmp_path / "lora")
    assert lora["global_step"] == 2
    assert (tmp_path / "lora/checkpoints/last/adapter_config.json").exists()
    merged, _, meta = checkpoints.load_for_inference(tmp_path / "lora", device="cpu")
    assert meta["lora"] and not hasattr(merged, "peft_config")
