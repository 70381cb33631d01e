"""bf16 autocast: detected from the CPU's flags, forced on/off by TrainConfig.bf16, and on the tiny
model the first-step loss under bf16 matches fp32.

Tolerance: bf16 keeps 8 mantissa bits (relative rounding ~4e-3 per value); the loss is a mean of
fp32 log-softmaxes over bf16 matmuls, whose errors mostly average out, so 2% relative on a loss of ~10
(log of a 49k vocabulary) is loose enough for rounding and tight enough to catch a wrong softmax dtype
or a broken graph (those move it by whole units or give NaN)."""

import torch

from mirror_core import device as devices
from mirror_core.training import data, loop
from mirror_core.training.config import TrainConfig
from training_fixtures import make_snapshot

FAST = dict(student="tiny", seq_len=256, batch_tokens=512, eval_every=0, max_steps=1)

ZEN3 = "flags\t\t: fpu sse sse2 avx avx2 fma\n"
SPR = "flags\t\t: fpu avx2 avx512f avx512_bf16 amx_bf16 amx_tile\n"


def test_detection_reads_cpu_flags():
    assert devices.cpu_bf16_flags(ZEN3) == []
    assert devices.cpu_bf16_flags(SPR) == ["amx_bf16", "avx512_bf16"]
    on, note = devices.bf16_autocast("cpu", False)
    assert on is False and note.startswith("off")
    on, note = devices.bf16_autocast("cpu", True)
    assert on is True and note.startswith("on")


def test_auto_mode_on_a_cpu_needs_the_flags_and_a_measured_speedup():
    assert devices.cpu_auto([], None) == (False, "off (cpu has no amx_bf16/avx512_bf16: bf16 would be emulated "
                                                  "and slower)")
    # avx512_bf16 without AMX: measured 0.5× fp32 on the 2026-12-06 Xeon, so off
    assert devices.cpu_auto(["avx512_bf16"], 0.53) == (False, "off (cpu avx512_bf16: bf16 matmul measured 0.53× fp32)")
    assert devices.cpu_auto(["amx_bf16", "avx512_bf16"], 5.8) == (True, "on (cpu amx/avx512_bf16: bf16 matmul measured "
                                                                        "5.80× fp32)")
    assert devices.cpu_auto(["avx512_bf16"], 1.1)[0] is False  # within noise of fp32: not worth the rounding
    speedup = devices.cpu_bf16_speedup()  # this machine, measured: a positive ratio, cached per process
    assert speedup > 0 and devices.cpu_bf16_speedup() == speedup
    on, note = devices.bf16_autocast("cpu", None)
    assert on is (bool(devices.cpu_bf16_flags()) and speedup >= devices.BF16_MIN_SPEEDUP)
    assert ("measured" in note) is bool(devices.cpu_bf16_flags())


def _first_loss(items, tmp, bf16):
    rep = loop.QuietReporter(verbose=False)
    logs = []
    rep.log = logs.append
    loop.train(TrainConfig(bf16=bf16, **FAST), items, rep, tmp)
    return [v["loss"] for _, v in rep.metrics if "loss" in v][0], logs


def test_bf16_loss_matches_fp32_and_flag_turns_it_off(conn, tmp_path):
    items = data.load_items(conn, make_snapshot(conn, n_train=4, n_dev=1))
    fp32, logs32 = _first_loss(items, tmp_path / "a", False)
    bf16, logs16 = _first_loss(items, tmp_path / "b", True)
    assert any(m == "bf16 autocast: off (cpu, set by flag)" for m in logs32)
    assert any(m == "bf16 autocast: on (cpu, set by flag)" for m in logs16)
    assert torch.isfinite(torch.tensor(bf16))
    assert abs(bf16 - fp32) / fp32 < 0.02, (bf16, fp32)
    assert bf16 != fp32  # autocast really changed the arithmetic


def test_generation_and_self_evaluation_run_under_bf16():
    from mirror_core import formats
    from mirror_core.students import loading
    from mirror_core.students.generate import generate
    from mirror_core.students.selfeval import self_evaluate

    tok = loading.load_tokenizer("tiny")
    model = loading.tiny_causal_lm(tok)
    prompts = [formats.prompt("cot", q) for q in ("What is 2 + 3?", "How many legs do 3 cats have?")]
    with devices.autocast("cpu", True):
        g = generate(model, tok, prompts, max_new_tokens=8, batch_size=2)
        ev = self_evaluate(model, tok, ["What is 2 + 3?"] * 2, [None, None], ["5", "6"], batch_size=2)
    assert g.tokens_total > 0 and len(g.texts) == 2
    assert all(abs(sum(e.probs.values()) - 1.0) < 1e-5 and 0.0 <= e.confidence <= 1.0 for e in ev)
