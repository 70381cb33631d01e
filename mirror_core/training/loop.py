"""The trainer: one loop, read top to bottom.

    train(cfg, items, reporter, out_dir)
      student + tokenizer (fresh, or from checkpoints/last/ when resuming)
      for each stage (joint: one; two-stage: verdict+critique, then answer+cot from stage 1's weights):
        fresh AdamW (fused on CUDA) + warmup/linear-decay schedule (restored when resuming mid-stage)
        each optimizer step: grad_accum micro-batches (× ranks under DDP), bf16 autocast where native (device.py),
          loss = Σ_t α_t · mean CE_t (chunked vocabulary projection, loss.py), clip, step
          metrics to the store: loss/<task>, loss, lr, tokens_per_s, mem
          every eval_every steps: dev loss → best/ (final stage only, never test) → last/ (+ trainer state)
          early stopping after `patience` evaluations without a better dev loss

Resume is exact: the batch plan of an epoch depends only on (seed, epoch), and last/ stores the step,
optimizer, scheduler and RNG states. The reporter is a JobContext (or anything with log, progress,
metric, should_stop); under torchrun only rank 0 reports and saves.
"""

from __future__ import annotations

import contextlib
import math
import os
import resource
import time
from pathlib import Path
from typing import Any

import torch

from mirror_core import formats
from mirror_core.errors import TrainingError
from mirror_core.students import checkpoints, loading, seq2seq
from mirror_core.training import data, loss as L
from mirror_core.training.config import TrainConfig

N_TASKS = len(formats.TASKS)


class QuietReporter:
    """Reporter for ranks other than 0, benchmarks and tests: prints logs only when asked."""

    def __init__(self, verbose: bool = False, stop_after: int | None = None):
        self.verbose, self.stop_after, self.metrics, self.steps = verbose, stop_after, [], 0

    def log(self, msg: str) -> None:
        if self.verbose:
            print(msg, flush=True)

    def progress(self, done, total=None, note=None, cost_usd=None) -> None:
        self.steps = done

    def metric(self, step: int, **values) -> None:
        self.metrics.append((step, values))

    def should_stop(self) -> bool:
        return self.stop_after is not None and self.steps >= self.stop_after


# ---------------------------------------------------------------- students

_TOKENIZERS: dict[str, Any] = {}


def load_tokenizer(cfg: TrainConfig):
    """The student's tokenizer, loaded once per process (loading it costs seconds on a busy CPU)."""
    spec = seq2seq.tokenizer_spec(cfg.student) if cfg.arch == "seq2seq" else cfg.student
    if spec not in _TOKENIZERS:
        _TOKENIZERS[spec] = loading.load_tokenizer(spec)
    return _TOKENIZERS[spec]


def build_student(cfg: TrainConfig, tokenizer, device: str, resume_from: Path | None = None):
    if resume_from is not None:
        model = checkpoints.load_model(resume_from, checkpoints.load_meta(resume_from), device, trainable=True)
    else:
        model = loading.base_model(cfg.student, cfg.arch, device, cfg.seed, tokenizer)
        if cfg.lora:
            from peft import LoraConfig, get_peft_model

            task = "SEQ_2_SEQ_LM" if cfg.arch == "seq2seq" else "CAUSAL_LM"
            model = get_peft_model(model, LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=0.05,
                                                     target_modules="all-linear", task_type=task))
    core = _core(model)
    core.config.use_cache = False
    if cfg.grad_checkpointing:
        core.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    return model


def _core(model):
    """The transformers model under a peft wrapper."""
    model = checkpoints.unwrap(model)
    return model.get_base_model() if hasattr(model, "get_base_model") else model


class StudentLoss(torch.nn.Module):
    """Wraps the student so that DDP sees one forward: batch → (Σ w·CE, CE per label, task per label).

    The body runs without its LM head; loss.linear_cross_entropy projects only label positions."""

    def __init__(self, model, arch: str, chunk: int, compute_dtype: torch.dtype):
        super().__init__()
        self.model, self.arch, self.chunk, self.compute_dtype = model, arch, chunk, compute_dtype
        cfg = _core(model).config
        # Models that transform logits after the head (e.g. Gemma's soft-capping) take the plain path.
        self.plain = bool(getattr(cfg, "final_logit_softcapping", None) or getattr(cfg, "logit_scale", None))

    def forward(self, batch: dict[str, torch.Tensor], task_scale: torch.Tensor):
        core = _core(self.model)
        labels, tasks = batch["labels"], batch["task_ids"]
        if self.arch == "seq2seq":
            enc = core.encoder(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
            dec = core.decoder(input_ids=core._shift_right(labels), encoder_hidden_states=enc[0],
                               encoder_attention_mask=batch["attention_mask"], use_cache=False)
            hidden = dec[0] * (core.model_dim ** -0.5) if getattr(core.config, "scale_decoder_outputs", False) else dec[0]
            shift = False
        elif self.plain:
            logits = core(input_ids=batch["input_ids"], position_ids=batch.get("position_ids"),
                          attention_mask=batch.get("attention_mask"), use_cache=False).logits
            lg, tg, tk = L.select_labelled(logits, labels, tasks, shift=True)
            ce = torch.nn.functional.cross_entropy(lg.float(), tg, reduction="none")
            return (ce * task_scale[tk]).sum(), ce.detach(), tk
        else:
            # attention_mask=None + restarting position_ids → block-diagonal attention (data.py)
            hidden = core.base_model(input_ids=batch["input_ids"], position_ids=batch.get("position_ids"),
                                     attention_mask=batch.get("attention_mask"), use_cache=False).last_hidden_state
            shift = True
        h, tg, tk = L.select_labelled(hidden, labels, tasks, shift=shift)
        head = core.get_output_embeddings()
        total, ce = L.linear_cross_entropy(h, head.weight, head.bias, tg, task_scale[tk], self.chunk,
                                           self.compute_dtype)
        return total, ce, tk


# ---------------------------------------------------------------- the loop

def train(cfg: TrainConfig, items: list[dict[str, Any]], reporter, out_dir: Path | str, *,
          snapshot_id: int | None = None, device: str | None = None) -> dict[str, Any]:
    """Train (or resume) a student on snapshot items; returns a summary (also stored in last/)."""
    out_dir = Path(out_dir)
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # tqdm bars would flood the job log at every checkpoint
    dist = torch.distributed.is_available() and torch.distributed.is_initialized()
    rank, world = (torch.distributed.get_rank(), torch.distributed.get_world_size()) if dist else (0, 1)
    if device is None:
        device = f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}" if torch.cuda.is_available() else "cpu"
    on_gpu = device.startswith("cuda")
    if on_gpu:
        torch.cuda.set_device(device)
        torch.backends.cuda.matmul.allow_tf32 = True
    from mirror_core import device as devices

    use_bf16, bf16_note = devices.bf16_autocast(device, cfg.bf16)
    amp = devices.autocast(device, use_bf16)  # fp32 master weights; the loss's softmax stays fp32
    compute_dtype = torch.bfloat16 if use_bf16 else torch.float32
    batch_tokens = cfg.resolved_batch_tokens(on_gpu)
    torch.manual_seed(cfg.seed)

    # --- resume point: checkpoints/last/ holds the weights, trainer_state.pt where we were
    last = checkpoints.find(out_dir, checkpoints.LAST)
    state = checkpoints.load_trainer_state(last) if last else None
    if state and state.get("finished"):
        reporter.log(f"run already finished at step {state['global_step']}; nothing to do")
        return state["summary"]
    tok = load_tokenizer(cfg)
    model = build_student(cfg, tok, device, resume_from=last if state else None)
    if state:
        reporter.log(f"resuming from {last} at stage {state['stage'] + 1}, step {state['step']} "
                     f"(global step {state['global_step']})")
    reporter.log(f"bf16 autocast: {bf16_note}")
    state = state or {"stage": 0, "step": 0, "global_step": 0, "best_dev": None, "bad_evals": 0,
                      "tokens": 0, "stage_start_fingerprints": [], "history": []}
    module = StudentLoss(model, cfg.arch, cfg.loss_chunk, compute_dtype)
    train_module = module
    if dist:
        train_module = torch.nn.parallel.DistributedDataParallel(
            module, device_ids=[torch.cuda.current_device()] if on_gpu else None)
    if cfg.compile:
        train_module = torch.compile(train_module)

    # --- data: every stage's examples tokenized once; the plan of an epoch is rebuilt on demand
    stages = cfg.stages()
    alphas = torch.tensor([cfg.weights.get(t, 0.0) for t in formats.TASKS], dtype=torch.float64)
    splits = {}
    for si, stage_tasks in enumerate(stages):
        tr = data.tokenize(data.build_examples(items, stage_tasks, "train"), tok, cfg.arch, cfg.seq_len)
        dv = data.tokenize(data.build_examples(items, stage_tasks, "dev"), tok, cfg.arch, cfg.seq_len)
        if not tr:
            raise TrainingError(f"The snapshot has no training examples for task(s) {', '.join(stage_tasks)} "
                                "(split 'train'); pick other tasks or a snapshot with CoTs/self-evaluations.")
        splits[si] = (tr, dv[: cfg.dev_max_examples])

    def plan(si: int, epoch: int) -> list[dict[str, Any]]:
        return data.make_batches(splits[si][0], arch=cfg.arch, packing=cfg.packing, seq_len=cfg.seq_len,
                                 batch_tokens=batch_tokens, pad_id=tok.pad_token_id, seed=cfg.seed, epoch=epoch)

    per_step = cfg.grad_accum * world
    steps_per_epoch = {si: max(1, len(plan(si, 0)) // per_step) for si in splits}
    totals = {si: cfg.max_steps or max(1, math.ceil(cfg.epochs * steps_per_epoch[si])) for si in splits}
    grand_total = sum(totals.values())
    reporter.log(f"student {cfg.student} ({cfg.arch}), {sum(p.numel() for p in model.parameters()) / 1e6:.1f}M "
                 f"params, device {device}, world {world}, bf16 {use_bf16}, packing {cfg.packing}, "
                 f"{batch_tokens} tokens/micro-batch × {per_step}; stages {stages}; steps {list(totals.values())}")

    summary: dict[str, Any] = {}
    for si in range(state["stage"], len(stages)):
        final_stage = si == len(stages) - 1
        tr, dv = splits[si]
        total = totals[si]
        params = [p for p in model.parameters() if p.requires_grad]
        opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay, fused=on_gpu)
        warm = int(cfg.warmup_ratio * total)
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda s: (s + 1) / (warm + 1) if s < warm else max(0.0, (total - s) / max(1, total - warm)))
        if state["step"] > 0:  # resuming inside this stage
            opt.load_state_dict(state["optimizer"])
            sched.load_state_dict(state["scheduler"])
            checkpoints.set_rng_state(state["rng"])
        else:
            state["stage_start_fingerprints"].append(fingerprint(model))
            state["best_dev"], state["bad_evals"] = None, 0
        epoch_cache: dict[int, list] = {}
        window_t, window_tokens = time.perf_counter(), 0
        stopped = early = False

        while state["step"] < total:
            if _any(reporter.should_stop(), dist, device):
                stopped = True
                break
            step = state["step"]
            epoch, offset = divmod(step, steps_per_epoch[si])
            if epoch not in epoch_cache:
                epoch_cache = {epoch: plan(si, epoch)}
            micro_all = epoch_cache[epoch]
            start = offset * per_step
            micro = [micro_all[(start + j) % len(micro_all)] for j in range(per_step)][rank::world]

            # Per-task token counts of the whole step (all micro-batches, all ranks) fix each task's mean.
            counts = torch.zeros(N_TASKS, dtype=torch.float64)
            for mb in micro:
                counts += torch.bincount(_label_tasks(mb, cfg.arch), minlength=N_TASKS).double()
            counts = _all_sum(counts, dist, device)
            task_scale = L.task_scale(alphas, counts, world).to(device)

            model.train()
            sums = torch.zeros(N_TASKS, dtype=torch.float64, device=device)
            step_tokens = 0
            for j, mb in enumerate(micro):
                batch = {k: v.to(device, non_blocking=True) for k, v in mb.items() if torch.is_tensor(v)}
                sync = contextlib.nullcontext() if (not dist or j == len(micro) - 1) else train_module.no_sync()
                with sync, amp:
                    total_loss, ce, tk = train_module(batch, task_scale)
                    total_loss.backward()
                sums += torch.zeros(N_TASKS, dtype=torch.float64, device=device).index_add_(0, tk, ce.double())
                step_tokens += mb["n_tokens"]
            grad_norm = torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm) if cfg.max_grad_norm else None
            opt.step()
            sched.step()
            opt.zero_grad(set_to_none=True)

            state["step"] += 1
            state["global_step"] += 1
            gstep = state["global_step"]
            sums = _all_sum(sums.cpu(), dist, device)
            step_tokens = int(_all_sum(torch.tensor([float(step_tokens)]), dist, device)[0])
            state["tokens"] += step_tokens
            window_tokens += step_tokens
            now = time.perf_counter()
            tps = window_tokens / max(now - window_t, 1e-9)
            window_t, window_tokens = now, 0
            task_means = {t: float(sums[i] / counts[i]) for i, t in enumerate(formats.TASKS) if counts[i] > 0}
            step_loss = sum(cfg.weights[t] * v for t, v in task_means.items())
            if rank == 0:
                reporter.metric(gstep, **{f"loss/{t}": v for t, v in task_means.items()}, loss=step_loss,
                                lr=sched.get_last_lr()[0], tokens_per_s=tps, mem=_mem_mb(device), stage=si + 1,
                                grad_norm=float(grad_norm) if grad_norm is not None else None)
                done = gstep
                eta = (grand_total - done) * step_tokens / max(tps, 1e-9) if step_tokens else 0
                reporter.progress(done, grand_total, f"stage {si + 1}/{len(stages)} step {state['step']}/{total} · "
                                  f"loss {step_loss:.3f} · {tps:,.0f} tok/s · ETA {_fmt_s(eta)}")

            at_eval = (cfg.eval_every and state["step"] % cfg.eval_every == 0) or state["step"] == total
            if at_eval:
                dev = evaluate(module, dv, cfg, tok, device, amp, alphas) if dv else None
                if dev is not None:
                    if rank == 0:
                        reporter.metric(gstep, **{"dev/loss": dev["loss"]},
                                        **{f"dev/loss/{t}": v for t, v in dev["tasks"].items()})
                    better = state["best_dev"] is None or dev["loss"] < state["best_dev"] - 1e-6
                    state["best_dev"] = dev["loss"] if better else state["best_dev"]
                    state["bad_evals"] = 0 if better else state["bad_evals"] + 1
                    if better and final_stage and rank == 0:
                        checkpoints.save(checkpoints.ckpt_dir(out_dir, checkpoints.BEST), model, tok,
                                         _meta(cfg, snapshot_id, gstep, dev_loss=dev["loss"]))
                    reporter.log(f"step {gstep}: dev loss {dev['loss']:.4f}" + (" (best)" if better else
                                 f" (no better for {state['bad_evals']} eval(s))"))
                    state["history"].append({"step": gstep, "stage": si + 1, "dev_loss": dev["loss"]})
                if state["step"] < total:
                    _save_last(out_dir, model, tok, cfg, snapshot_id, state, opt, sched, rank, dist)
                if dev is not None and cfg.patience and state["bad_evals"] >= cfg.patience:
                    reporter.log(f"early stop: dev loss did not improve for {cfg.patience} evaluations")
                    early = True
                    break

        if stopped:
            _save_last(out_dir, model, tok, cfg, snapshot_id, state, opt, sched, rank, dist)
            reporter.log(f"stopped at global step {state['global_step']}; resume continues from here")
            if hasattr(reporter, "check_stop"):
                reporter.check_stop()
            return {"stopped": True, "global_step": state["global_step"]}
        if not final_stage and rank == 0:
            checkpoints.save(checkpoints.ckpt_dir(out_dir, f"stage{si + 1}"), model, tok,
                             _meta(cfg, snapshot_id, state["global_step"], stage=si + 1))
        summary[f"stage{si + 1}"] = {"steps": state["step"], "early_stop": early, "best_dev": state["best_dev"]}
        state.update(stage=si + 1, step=0)
        if not final_stage:
            # A kill right after this resumes at the start of the next stage, with a fresh optimizer.
            for k in ("optimizer", "scheduler", "rng"):
                state.pop(k, None)
            _save_last(out_dir, model, tok, cfg, snapshot_id, state, None, None, rank, dist)

    summary.update(global_step=state["global_step"], tokens=state["tokens"], best_dev_loss=state["best_dev"],
                   stage_start_fingerprints=state["stage_start_fingerprints"], history=state["history"],
                   final_fingerprint=fingerprint(model), world=world)
    if dist:
        fp = torch.tensor([summary["final_fingerprint"]], dtype=torch.float64)
        lo, hi = _all_reduce(fp.clone(), dist, device, "min"), _all_reduce(fp.clone(), dist, device, "max")
        summary["ranks_in_sync"] = bool(float(hi[0]) == float(lo[0]))
    state.update(finished=True, summary=summary)
    _save_last(out_dir, model, tok, cfg, snapshot_id, state, None, None, rank, dist)
    return summary


@torch.no_grad()
def result_of(summary: dict[str, Any]) -> dict[str, Any]:
    """What runs.result keeps of `train`'s summary: the headline numbers, not the per-eval history.

    Next to `train` because it reads train's keys; the one-process job and every torchrun rank 0 use it."""
    keep = ("global_step", "tokens", "best_dev_loss", "world", "ranks_in_sync", "stopped")
    out = {k: summary[k] for k in keep if k in summary}
    out.update({k: v for k, v in summary.items() if k.startswith("stage")
                and k != "stage_start_fingerprints"})
    return out


def evaluate(module: StudentLoss, dev: list, cfg: TrainConfig, tok, device: str, amp, alphas) -> dict[str, Any]:
    """Mean CE per task on the dev examples and Σ α_t · mean_t (the number best/ is chosen on)."""
    was = module.training
    module.eval()
    sums = torch.zeros(N_TASKS, dtype=torch.float64)
    counts = torch.zeros(N_TASKS, dtype=torch.float64)
    ones = torch.ones(N_TASKS, device=device)
    for mb in data.make_batches(dev, arch=cfg.arch, packing=cfg.packing, seq_len=cfg.seq_len,
                                batch_tokens=cfg.resolved_batch_tokens(device.startswith("cuda")),
                                pad_id=tok.pad_token_id, seed=0, epoch=0):
        batch = {k: v.to(device) for k, v in mb.items() if torch.is_tensor(v)}
        with amp:
            _, ce, tk = module(batch, ones)
        s, c = L.per_task(ce, tk, N_TASKS)
        sums += s.cpu()
        counts += c.cpu()
    module.train(was)
    tasks = {t: float(sums[i] / counts[i]) for i, t in enumerate(formats.TASKS) if counts[i] > 0}
    return {"loss": sum(float(alphas[formats.TASKS.index(t)]) * v for t, v in tasks.items()), "tasks": tasks}


# ---------------------------------------------------------------- small helpers

def _label_tasks(mb: dict[str, Any], arch: str) -> torch.Tensor:
    """Task index of every label position (after the causal shift)."""
    labels, tasks = (mb["labels"][:, 1:], mb["task_ids"][:, 1:]) if arch == "causal" else (mb["labels"], mb["task_ids"])
    return tasks[labels != data.IGNORE]


def _meta(cfg: TrainConfig, snapshot_id, step: int, **extra) -> dict[str, Any]:
    return {"student": cfg.student, "arch": cfg.arch, "format_version": formats.FORMAT_VERSION,
            "tasks": cfg.tasks, "weights": cfg.weights, "method": cfg.method, "schedule": cfg.schedule,
            "snapshot_id": snapshot_id, "step": step, "lora": cfg.lora, "init_seed": cfg.seed,
            "config": cfg.to_dict(), **extra}


def _save_last(out_dir, model, tok, cfg, snapshot_id, state, opt, sched, rank, dist) -> None:
    if rank == 0:
        st = dict(state)
        if opt is not None:
            st.update(optimizer=opt.state_dict(), scheduler=sched.state_dict())
        st["rng"] = checkpoints.rng_state()
        checkpoints.save(checkpoints.ckpt_dir(out_dir, checkpoints.LAST), model, tok,
                         _meta(cfg, snapshot_id, state["global_step"], stage=state["stage"] + 1), st)
    if dist:
        torch.distributed.barrier()


def fingerprint(model) -> float:
    """A cheap identity of the weights: Σ |w| in float64 (equal weights ⇒ equal fingerprints)."""
    with torch.no_grad():
        return float(sum(p.detach().double().abs().sum() for p in checkpoints.unwrap(model).parameters()))


def _all_reduce(t: torch.Tensor, dist: bool, device: str, op: str = "sum") -> torch.Tensor:
    if not dist:
        return t
    x = t.to(device) if torch.distributed.get_backend() == "nccl" else t
    torch.distributed.all_reduce(x, op={"sum": torch.distributed.ReduceOp.SUM, "min": torch.distributed.ReduceOp.MIN,
                                        "max": torch.distributed.ReduceOp.MAX}[op])
    return x.cpu()


def _all_sum(t: torch.Tensor, dist: bool, device: str) -> torch.Tensor:
    return _all_reduce(t, dist, device, "sum")


def _any(flag: bool, dist: bool, device: str) -> bool:
    """Every rank stops together when any one is asked to (else the others hang in all-reduce)."""
    return bool(_all_sum(torch.tensor([1.0 if flag else 0.0]), dist, device)[0] > 0)


def _mem_mb(device: str) -> float:
    if device.startswith("cuda"):
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _fmt_s(s: float) -> str:
    s = int(s)
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"
