"""Seq2seq (T5-family) students. Offline there are no T5 weights (OFFLINE.md), so 't5-tiny', 't5-small'
and 't5-base' build a randomly initialised T5 v1.1 shape from a config with SmolLM2's tokenizer; any
other spec (hub id or local folder) loads with from_pretrained when it is reachable."""

from __future__ import annotations

from mirror_core.errors import TrainingError

# T5 v1.1 shapes (gated-GELU, untied head) — paper students; 'tiny' is for tests.
SHAPES = {
    "t5-tiny": dict(d_model=64, d_ff=128, d_kv=16, num_layers=2, num_decoder_layers=2, num_heads=4),
    "t5-small": dict(d_model=512, d_ff=1024, d_kv=64, num_layers=8, num_decoder_layers=8, num_heads=6),
    "t5-base": dict(d_model=768, d_ff=2048, d_kv=64, num_layers=12, num_decoder_layers=12, num_heads=12),
}


def is_config_spec(spec: str) -> bool:
    return spec in SHAPES


def tokenizer_spec(spec: str) -> str:
    """Config-built T5s use SmolLM2's tokenizer; real checkpoints bring their own."""
    return "tiny" if is_config_spec(spec) else spec


def t5_from_config(spec: str, tokenizer, seed: int = 0):
    import torch
    from transformers import T5Config, T5ForConditionalGeneration

    cfg = T5Config(vocab_size=len(tokenizer), feed_forward_proj="gated-gelu", tie_word_embeddings=False,
                   dropout_rate=0.0, pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
                   decoder_start_token_id=tokenizer.pad_token_id, **SHAPES[spec])
    torch.manual_seed(seed)
    return T5ForConditionalGeneration(cfg)


def load_seq2seq(spec: str, tokenizer, seed: int = 0):
    if is_config_spec(spec):
        return t5_from_config(spec, tokenizer, seed)
    from transformers import AutoModelForSeq2SeqLM

    try:
        return AutoModelForSeq2SeqLM.from_pretrained(spec)
    except OSError as exc:
        raise TrainingError(f"Cannot load seq2seq student '{spec}': {exc}. Offline, use 't5-small' or 't5-base' "
                            "(built from a config) or a local folder.") from exc
