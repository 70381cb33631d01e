"""Evaluation speed: batched vs one-at-a-time generation of the same predictions, and GSM8K test time.

1. Tiny student (2 layers, 64 wide, SmolLM2 vocabulary): the same greedy predictions for N GSM8K
   questions generated one prompt at a time and in length-sorted, left-padded batches with the KV
   cache; prints tokens/s of both and their ratio (target >= 5x).
2. Default student (SmolLM2-135M): batched generation + self-evaluation of a sample of GSM8K test
   questions, timed and extrapolated to all 1,319 (the script says it extrapolates).
3. With --bf16: SmolLM2-135M batched generation tokens/s, fp32 vs bf16 autocast, same prompts, one run
   (the bf16 leg runs only on a CPU/GPU with native bf16, or with --force-bf16).
Usage: python bench/eval_bench.py [--n 64] [--sample 16] [--max-new-tokens 256] [--threads 1] [--skip-smollm2] [--bf16]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def gsm8k_questions() -> list[str]:
    from mirror_core.data.builtin import gsm8k_path

    qs = []
    with gzip.open(gsm8k_path(), "rt") as f:
        for line in f:
            doc = json.loads(line)["doc"]
            qs.append(doc["question"])
    return list(dict.fromkeys(qs))


def main() -> int:
    import torch

    from mirror_core import formats
    from mirror_core.students import loading
    from mirror_core.students.generate import generate
    from mirror_core.students.selfeval import self_evaluate

    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=64)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--tiny-new-tokens", type=int, default=64)
    ap.add_argument("--sample", type=int, default=16)
    ap.add_argument("--max-new-tokens", type=int, default=256)
    ap.add_argument("--skip-smollm2", action="store_true")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads (default 1: on a shared 2-core box more threads than free cores thrash)")
    ap.add_argument("--bf16", action="store_true", help="only: SmolLM2 batched generation, fp32 vs bf16 autocast")
    ap.add_argument("--force-bf16", action="store_true", help="time the bf16 leg even without native bf16")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.bf16:
        return bf16_compare(args)
    qs = gsm8k_questions()
    print(f"machine: {os.cpu_count()} cpus, torch threads {torch.get_num_threads()}, "
          f"load average {os.getloadavg()[0]:.1f}, cuda {torch.cuda.is_available()}")

    tok = loading.load_tokenizer("tiny")
    model = loading.tiny_causal_lm(tok)
    prompts = [formats.prompt("cot", q) for q in qs[:args.n]]
    generate(model, tok, prompts[:4], max_new_tokens=4, batch_size=4)  # warm-up
    single = generate(model, tok, prompts, max_new_tokens=args.tiny_new_tokens, batch_size=1)
    batched = generate(model, tok, prompts, max_new_tokens=args.tiny_new_tokens, batch_size=args.batch_size)
    same = sum(a == b for a, b in zip(single.texts, batched.texts))
    ratio = batched.tokens_per_s / single.tokens_per_s
    print(f"tiny student, {args.n} GSM8K questions, {args.tiny_new_tokens} new tokens, greedy:")
    print(f"  one at a time : {single.tokens_total} tokens in {single.seconds:.1f} s = {single.tokens_per_s:,.0f} tok/s")
    print(f"  batched ({args.batch_size:>3}) : {batched.tokens_total} tokens in {batched.seconds:.1f} s = "
          f"{batched.tokens_per_s:,.0f} tok/s")
    print(f"  speed-up {ratio:.1f}x (target >= 5x); identical predictions {same}/{args.n}")
    out = {"tiny": {"n": args.n, "single_tok_s": single.tokens_per_s, "batched_tok_s": batched.tokens_per_s,
                    "ratio": ratio, "identical": same}}

    if not args.skip_smollm2:
        t0 = time.perf_counter()
        tok2 = loading.load_tokenizer("smollm2")
        m2 = loading.load_causal_lm("smollm2")
        load_s = time.perf_counter() - t0
        sample = [formats.prompt("cot", q) for q in qs[:args.sample]]
        g = generate(m2, tok2, sample, max_new_tokens=args.max_new_tokens, batch_size=args.sample)
        t1 = time.perf_counter()
        self_evaluate(m2, tok2, qs[:args.sample], [None] * args.sample, [t or "(none)" for t, in g.texts],
                      batch_size=args.sample)
        se_s = time.perf_counter() - t1
        per_item = (g.seconds + se_s) / args.sample
        est = per_item * 1319
        print(f"SmolLM2-135M (untrained default student), {args.sample} GSM8K test questions, batch {args.sample}, "
              f"up to {args.max_new_tokens} new tokens: load {load_s:.1f} s, generation {g.seconds:.1f} s "
              f"({g.tokens_per_s:,.0f} tok/s, {g.tokens_total / args.sample:.0f} tokens/question), "
              f"self-evaluation {se_s:.1f} s")
        print(f"  EXTRAPOLATED from {args.sample} items: 1,319 GSM8K test items take about {est / 60:.0f} min on this "
              f"machine ({per_item:.2f} s/item)")
        out["smollm2"] = {"sample": args.sample, "gen_tok_s": g.tokens_per_s, "per_item_s": per_item,
                          "est_1319_s": est, "extrapolated": True}
    print(json.dumps(out))
    return 0


def bf16_compare(args) -> int:
    """SmolLM2 generation of the same batch in fp32 and under bf16 autocast (where native)."""
    from mirror_core import device as devices
    from mirror_core import formats
    from mirror_core.students import loading
    from mirror_core.students.generate import generate

    flags = devices.cpu_bf16_flags()
    tok = loading.load_tokenizer("smollm2")
    model = loading.load_causal_lm("smollm2")
    prompts = [formats.prompt("cot", q) for q in gsm8k_questions()[:args.sample]]
    legs = [("fp32", False)] + ([("bf16", True)] if flags or args.force_bf16 else [])
    rates = {}
    for name, on in legs:
        with devices.autocast("cpu", on):
            generate(model, tok, prompts[:2], max_new_tokens=4, batch_size=2)  # warm-up
            g = generate(model, tok, prompts, max_new_tokens=args.max_new_tokens, batch_size=args.sample)
        rates[name] = g.tokens_per_s
        print(f"SmolLM2-135M, {args.sample} GSM8K prompts batched, ≤{args.max_new_tokens} new tokens, {name}: "
              f"{g.tokens_total} tokens in {g.seconds:.1f} s = {g.tokens_per_s:,.1f} tok/s")
    if "bf16" in rates:
        print(f"bf16 / fp32 = {rates['bf16'] / rates['fp32']:.2f}x (target >= 2x)")
    else:
        print(f"bf16 leg skipped: cpu bf16 flags {flags or 'none'} (bf16 would be emulated; --force-bf16 times it anyway)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
