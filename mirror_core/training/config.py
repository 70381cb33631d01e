"""TrainConfig: everything a training run needs, with help per field and range checks.

A job stores `asdict(cfg)` in `runs.config`; `TrainConfig.from_dict` rebuilds it (unknown keys are an
error, so a typo never silently falls back to a default). Fields left at None are sized to the student
in `__post_init__` — a 64-wide test model and a 135M model want very different learning rates.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from mirror_core.configs import config_from_dict, help_of, option
from mirror_core.errors import TrainingError
from mirror_core.students.loading import is_tiny

TASKS = ("answer", "cot", "verdict", "critique")
SELF_EVAL_TASKS = ("verdict", "critique")   # stage 1 of the two-stage schedule
REASONING_TASKS = ("answer", "cot")         # stage 2
# Method presets (PAPERS.md §1-2): Mind's Mirror trains all four tasks with α = 0.5 on each
# predict/explain pair; distilling step-by-step trains answer + CoT with α = 0.5; the baseline is
# plain fine-tuning on the answer.
METHODS: dict[str, dict[str, float]] = {
    "mindsmirror": {"answer": 0.5, "cot": 0.5, "verdict": 0.5, "critique": 0.5},
    "step-by-step": {"answer": 0.5, "cot": 0.5},
    "answer-only": {"answer": 1.0},
}
SCHEDULES = ("joint", "two-stage")
ARCHS = ("causal", "seq2seq")


def _help(text: str, default: Any = None, **kw) -> Any:
    """A TrainConfig field: every one has a default (None: sized to the student in __post_init__)."""
    return option(text, default, **kw)


def arch_for(student: str) -> str:
    """'seq2seq' for T5-family specs, else 'causal'. A local folder says so in its config.json."""
    import json
    from pathlib import Path

    s = (student or "").lower()
    p = Path(student or "")
    if (p / "config.json").exists():
        try:
            return "seq2seq" if json.loads((p / "config.json").read_text()).get("is_encoder_decoder") else "causal"
        except (OSError, ValueError):
            return "causal"
    return "seq2seq" if ("t5" in s.split("/")[-1] or s.startswith("t5")) else "causal"


@dataclass
class TrainConfig:
    student: str = _help("student: 'smollm2' (default, offline), 'tiny' (test model from a config), "
                         "'t5-tiny'/'t5-small' (seq2seq from a config), a hub id or a local path", "smollm2")
    arch: str | None = _help("causal | seq2seq; None: guessed from the student spec", choices=ARCHS)
    method: str = _help("preset of tasks and weights: mindsmirror | step-by-step | answer-only", "mindsmirror",
                        choices=tuple(METHODS))
    tasks: list[str] | None = _help("subset of answer,cot,verdict,critique; None: the method's tasks")
    weights: dict[str, float] | None = _help("α per task (loss = Σ α_t · mean CE_t); None: the method's weights")
    schedule: str = _help("joint (all tasks at once) | two-stage (verdict+critique, then answer+cot "
                          "continuing from stage 1's weights)", "joint", choices=SCHEDULES)
    lr: float | None = _help("peak learning rate; None: 1e-3 tiny, 2e-4 LoRA, 5e-5 otherwise")
    weight_decay: float = _help("AdamW weight decay", 0.0)
    batch_tokens: int | None = _help("tokens per micro-batch (packed rows × seq_len, or padded area); "
                                     "None: 4096 on CPU, 16384 on GPU")
    seq_len: int = _help("packed row length and longest example (longer ones are cut)", 1024)
    grad_accum: int = _help("micro-batches per optimizer step", 1)
    max_steps: int = _help("optimizer steps per stage; 0: use epochs", 0)
    epochs: float = _help("passes over the training examples per stage when max_steps is 0", 3.0)
    warmup_ratio: float = _help("fraction of a stage's steps with linear warmup", 0.03)
    eval_every: int = _help("dev evaluation and last/ checkpoint every N steps (0: only at the end)", 50)
    patience: int = _help("stop after this many dev evaluations without improvement (0: never)", 3)
    dev_max_examples: int = _help("at most this many dev examples per evaluation (keeps evals cheap)", 256)
    packing: bool | None = _help("pack examples into rows of seq_len with no cross-attention; None: on "
                                 "for causal students, off (length-bucketed batches) for seq2seq")
    bf16: bool | None = _help("bf16 autocast (fp32 master weights and loss); None: on for a GPU that "
                              "supports it, or a CPU with amx_bf16/avx512_bf16 where a bf16 matmul is measured "
                              "faster than fp32 (device.py); False: off")
    grad_checkpointing: bool = _help("recompute activations in backward to save memory", False)
    compile: bool = _help("torch.compile the student (GPU; first steps are slow)", False)
    lora: bool = _help("train LoRA adapters (peft) instead of all weights", False)
    lora_r: int = _help("LoRA rank", 16)
    lora_alpha: int = _help("LoRA alpha", 32)
    max_grad_norm: float = _help("clip the gradient norm (0: off)", 1.0)
    loss_chunk: int = _help("label positions projected to the vocabulary at once in the loss", 1024)
    seed: int = _help("seed for init, data order and dropout", 0)
    nproc: int | None = _help("processes (DDP ranks) on this machine; None: one per picked GPU (1 on CPU); "
                              ">1 runs the same entry point under torchrun")

    def __post_init__(self) -> None:
        if not self.student:
            raise TrainingError("student is empty; use 'smollm2', 'tiny', a hub id or a local path.")
        if self.method not in METHODS:
            raise TrainingError(f"method '{self.method}' is unknown; choose one of {', '.join(METHODS)}.")
        preset = METHODS[self.method]
        if self.tasks is None:
            self.tasks = list(preset)
        if isinstance(self.tasks, str):
            self.tasks = [t.strip() for t in self.tasks.split(",") if t.strip()]
        bad = [t for t in self.tasks if t not in TASKS]
        if bad or not self.tasks:
            raise TrainingError(f"tasks {bad or '(none)'} are not valid; choose from {', '.join(TASKS)}.")
        self.tasks = [t for t in TASKS if t in self.tasks]  # canonical order
        w = dict(self.weights or {})
        self.weights = {t: float(w.get(t, preset.get(t, 0.5))) for t in self.tasks}
        for t, a in self.weights.items():
            if not 0.0 < a <= 10.0:
                raise TrainingError(f"weight α for task '{t}' is {a}; it must be in (0, 10].")
        if self.schedule not in SCHEDULES:
            raise TrainingError(f"schedule '{self.schedule}' is unknown; choose joint or two-stage.")
        if self.schedule == "two-stage":
            if not set(self.tasks) & set(SELF_EVAL_TASKS) or not set(self.tasks) & set(REASONING_TASKS):
                raise TrainingError("two-stage needs a self-evaluation task (verdict/critique) and a reasoning "
                                    "task (answer/cot); use schedule=joint for other task sets.")
        self.arch = self.arch or arch_for(self.student)
        if self.arch not in ARCHS:
            raise TrainingError(f"arch '{self.arch}' is unknown; choose causal or seq2seq.")
        if self.packing is None:
            self.packing = self.arch == "causal"
        if self.packing and self.arch == "seq2seq":
            raise TrainingError("packing works for causal students only; set packing=False for seq2seq.")
        if self.lr is None:
            self.lr = 1e-3 if is_tiny(self.student) else (2e-4 if self.lora else 5e-5)
        checks = [
            ("lr", 0 < self.lr <= 1.0), ("weight_decay", 0 <= self.weight_decay <= 1),
            ("seq_len", 16 <= self.seq_len <= 32768), ("grad_accum", 1 <= self.grad_accum <= 1024),
            ("max_steps", 0 <= self.max_steps <= 10_000_000), ("epochs", 0 < self.epochs <= 1000),
            ("warmup_ratio", 0 <= self.warmup_ratio < 1), ("eval_every", self.eval_every >= 0),
            ("patience", self.patience >= 0), ("dev_max_examples", self.dev_max_examples >= 1),
            ("lora_r", 1 <= self.lora_r <= 1024), ("lora_alpha", self.lora_alpha >= 1),
            ("max_grad_norm", self.max_grad_norm >= 0), ("nproc", self.nproc is None or 1 <= self.nproc <= 64), ("loss_chunk", 16 <= self.loss_chunk <= 1 << 20),
        ]
        for name, ok in checks:
            if not ok:
                raise TrainingError(f"{name}={getattr(self, name)!r} is out of range; see "
                                    f"`TrainConfig.help()['{name}']`.")
        if self.batch_tokens is not None and not self.seq_len <= self.batch_tokens <= 1 << 24:
            raise TrainingError(f"batch_tokens={self.batch_tokens} must be at least seq_len ({self.seq_len}).")

    # ------------------------------------------------------------ helpers

    def resolved_batch_tokens(self, on_gpu: bool) -> int:
        return self.batch_tokens or max(self.seq_len, 16384 if on_gpu else 4096)

    def stages(self) -> list[list[str]]:
        """Task lists per stage: one stage for joint, self-evaluation then reasoning for two-stage."""
        if self.schedule == "joint":
            return [list(self.tasks)]
        return [[t for t in self.tasks if t in SELF_EVAL_TASKS], [t for t in self.tasks if t in REASONING_TASKS]]

    def require_data(self, counts: dict[str, int], snapshot: str = "the snapshot") -> None:
        """Refuse a run whose tasks have no training examples: a `mindsmirror` run on a snapshot without
        self-evaluations would silently be a step-by-step run (issue 11 item 9).

        One exception, by the method's definition: the critique is learned *when a teacher wrote critiques*.
        Verdicts without critique text (the reference evaluator, or verdict-only replay data) train the
        verdict task alone; the critique task is dropped from this config and the run's result says so."""
        if "critique" in self.tasks and not counts.get("critique") and counts.get("verdict"):
            self.tasks = [t for t in self.tasks if t != "critique"]
            self.weights = {t: w for t, w in (self.weights or {}).items() if t != "critique"}
            self.dropped_tasks = ["critique"]
        missing = [t for t in self.tasks if not counts.get(t)]
        if not missing:
            return
        have = [t for t in self.tasks if counts.get(t)]
        why = ("it has no self-evaluations" if set(missing) <= set(SELF_EVAL_TASKS)
               else "it has no CoTs with a final answer" if set(missing) <= {"cot"} else "it has no data for them")
        hint = (f"train only {','.join(have)} (tasks={','.join(have)}" +
                (", method step-by-step)" if set(have) <= set(REASONING_TASKS) and "verdict" in missing else ")")
                if have else "rebuild the snapshot from data with CoTs and self-evaluations")
        raise TrainingError(f"Method '{self.method}' trains {', '.join(self.tasks)}, but {snapshot} has no training "
                            f"examples for {', '.join(missing)} ({why}); generate them and rebuild the snapshot, "
                            f"or {hint}.")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TrainConfig":
        return config_from_dict(cls, d, label="training", error=TrainingError)

    @classmethod
    def help(cls) -> dict[str, str]:
        return help_of(cls)
