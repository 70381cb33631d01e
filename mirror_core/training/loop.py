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

Each line is one function below: _Env.setup (rank, device, bf16), _Trainer (student, data plan),
run_stage → _open_stage, _optimizer_step (_micro_batches, _accumulate, _report_step), _evaluate_and_checkpoint;
then end_stage or stop, and finish (the summary).

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
from dataclasses import dataclass, field
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
    """Train (or resume) a student on snapshot items; returns a summary (also stored in last/).

    The outline of the module docstring, one call per line: the process's place (_Env), the resume point,
    the student and its data (_Trainer), each stage's steps (run_stage), its end, and the summary."""
    out_dir = Path(out_dir)
    env = _Env.setup(cfg, device)
    # --- resume point: checkpoints/last/ holds the weights, trainer_state.pt where we were
    last = checkpoints.find(out_dir, checkpoints.LAST)
    state = checkpoints.load_trainer_state(last) if last else None
    if state and state.get("finished"):
        reporter.log(f"run already finished at step {state['global_step']}; nothing to do")
        return state["summary"]
    trainer = _Trainer(cfg, items, reporter, out_dir, snapshot_id, env, last, state)
    summary: dict[str, Any] = {}
    for si in range(trainer.state["stage"], len(trainer.stages)):
        stage = trainer.run_stage(si)
        if stage.stopped:
            return trainer.stop(stage)
        summary[f"stage{si + 1}"] = trainer.end_stage(stage)
    return trainer.finish(summary)


@dataclass
class _Env:
    """Where this process trains, decided once before anything is loaded: its rank among the torchrun ranks,
    its device, and whether it autocasts to bf16 (device.py decides; fp32 where bf16 is not native)."""

    dist: bool
    rank: int
    world: int
    device: str
    on_gpu: bool
    use_bf16: bool
    bf16_note: str
    amp: Any
    compute_dtype: torch.dtype
    batch_tokens: int

    @classmethod
    def setup(cls, cfg: TrainConfig, device: str | None) -> "_Env":
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
        # Before the student is built: a fresh student's initial weights come from this seed.
        torch.manual_seed(cfg.seed)
        return cls(dist, rank, world, device, on_gpu, use_bf16, bf16_note, amp, compute_dtype, batch_tokens)


@dataclass
class _Stage:
    """One stage's optimizer, schedule and plan cache. Built anew at each stage start (a fresh AdamW and
    warmup), so that nothing but the weights carries from stage 1 into stage 2."""

    si: int
    final: bool  # only the final stage's dev loss chooses best/
    dev: list
    total: int  # optimizer steps in this stage
    params: list
    opt: Any
    sched: Any
    epoch_cache: dict[int, list] = field(default_factory=dict)
    window_t: float = 0.0
    window_tokens: int = 0
    stopped: bool = False  # asked to stop (reporter.should_stop on any rank)
    early: bool = False  # early stopping on dev loss


class _Trainer:
    """One call of `train` from the student on: what its steps share (student, tokenizer, data, the trainer
    state that last/ stores), so that each step of the loop is a method with one job."""

    def __init__(self, cfg: TrainConfig, items: list[dict[str, Any]], reporter, out_dir: Path,
                 snapshot_id: int | None, env: _Env, last: Path | None, state: dict[str, Any] | None):
        self.cfg, self.reporter, self.out_dir, self.snapshot_id, self.env = cfg, reporter, out_dir, snapshot_id, env
        self.tok = load_tokenizer(cfg)
        self.model = build_student(cfg, self.tok, env.device, resume_from=last if state else None)
        if state:
            reporter.log(f"resuming from {last} at stage {state['stage'] + 1}, step {state['step']} "
                         f"(global step {state['global_step']})")
        reporter.log(f"bf16 autocast: {env.bf16_note}")
        self.state = state or {"stage": 0, "step": 0, "global_step": 0, "best_dev": None, "bad_evals": 0,
                               "tokens": 0, "stage_start_fingerprints": [], "history": []}
        # `module` evaluates; `train_module` (DDP and/or compiled around it) takes the training steps.
        self.module = StudentLoss(self.model, cfg.arch, cfg.loss_chunk, env.compute_dtype)
        self.train_module = self.module
        if env.dist:
            self.train_module = torch.nn.parallel.DistributedDataParallel(
                self.module, device_ids=[torch.cuda.current_device()] if env.on_gpu else None)
        if cfg.compile:
            self.train_module = torch.compile(self.train_module)
        self._prepare_data(items)

    # --- data: every stage's examples tokenized once; the plan of an epoch is rebuilt on demand

    def _prepare_data(self, items: list[dict[str, Any]]) -> None:
        """Tokenizes each stage's train and dev examples once and sizes every stage in optimizer steps, so that
        progress and ETA count against the whole run from the first step."""
        cfg, env, tok = self.cfg, self.env, self.tok
        self.stages = cfg.stages()
        self.alphas = torch.tensor([cfg.weights.get(t, 0.0) for t in formats.TASKS], dtype=torch.float64)
        self.splits = {}
        for si, stage_tasks in enumerate(self.stages):
            tr = data.tokenize(data.build_examples(items, stage_tasks, "train"), tok, cfg.arch, cfg.seq_len)
            dv = data.tokenize(data.build_examples(items, stage_tasks, "dev"), tok, cfg.arch, cfg.seq_len)
            if not tr:
                raise TrainingError(f"The snapshot has no training examples for task(s) {', '.join(stage_tasks)} "
                                    "(split 'train'); pick other tasks or a snapshot with CoTs/self-evaluations.")
            self.splits[si] = (tr, dv[: cfg.dev_max_examples])
        self.per_step = cfg.grad_accum * env.world
        self.steps_per_epoch = {si: max(1, len(self.plan(si, 0)) // self.per_step) for si in self.splits}
        self.totals = {si: cfg.max_steps or max(1, math.ceil(cfg.epochs * self.steps_per_epoch[si]))
                       for si in self.splits}
        self.grand_total = sum(self.totals.values())
        n_params = sum(p.numel() for p in self.model.parameters()) / 1e6
        self.reporter.log(f"student {cfg.student} ({cfg.arch}), {n_params:.1f}M "
                          f"params, device {env.device}, world {env.world}, bf16 {env.use_bf16}, packing "
                          f"{cfg.packing}, {env.batch_tokens} tokens/micro-batch × {self.per_step}; "
                          f"stages {self.stages}; steps {list(self.totals.values())}")

    def plan(self, si: int, epoch: int) -> list[dict[str, Any]]:
        """The micro-batches of stage `si`'s epoch, a function of (seed, epoch) only: what makes resume exact."""
        cfg = self.cfg
        return data.make_batches(self.splits[si][0], arch=cfg.arch, packing=cfg.packing, seq_len=cfg.seq_len,
                                 batch_tokens=self.env.batch_tokens, pad_id=self.tok.pad_token_id, seed=cfg.seed,
                                 epoch=epoch)

    # --- one stage

    def run_stage(self, si: int) -> _Stage:
        """Stage `si`'s optimizer steps from where the state says (its start, or mid-stage when resuming) to its
        step budget, an early stop, or a stop request; the caller saves and summarises from the result."""
        cfg, state = self.cfg, self.state
        stage = self._open_stage(si)
        while state["step"] < stage.total:
            if _any(self.reporter.should_stop(), self.env.dist, self.env.device):
                stage.stopped = True
                break
            self._optimizer_step(stage)
            at_eval = (cfg.eval_every and state["step"] % cfg.eval_every == 0) or state["step"] == stage.total
            if at_eval and self._evaluate_and_checkpoint(stage):
                stage.early = True
                break
        return stage

    def _open_stage(self, si: int) -> _Stage:
        """A fresh AdamW (fused on CUDA) and warmup/linear-decay schedule for stage `si`; when resuming inside the
        stage, their states and the RNG state from last/ instead of a new start."""
        cfg, state = self.cfg, self.state
        total = self.totals[si]
        params = [p for p in self.model.parameters() if p.requires_grad]
        opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay, fused=self.env.on_gpu)
        warm = int(cfg.warmup_ratio * total)
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda s: (s + 1) / (warm + 1) if s < warm else max(0.0, (total - s) / max(1, total - warm)))
        if state["step"] > 0:  # resuming inside this stage
            opt.load_state_dict(state["optimizer"])
            sched.load_state_dict(state["scheduler"])
            checkpoints.set_rng_state(state["rng"])
        else:
            state["stage_start_fingerprints"].append(fingerprint(self.model))
            state["best_dev"], state["bad_evals"] = None, 0
        return _Stage(si=si, final=si == len(self.stages) - 1, dev=self.splits[si][1], total=total, params=params,
                      opt=opt, sched=sched, window_t=time.perf_counter())

    # --- one optimizer step

    def _optimizer_step(self, stage: _Stage) -> None:
        """grad_accum micro-batches (× ranks under DDP) forward and backward, then clip and step; the state's
        step counters and token count, and the step's metrics and progress line."""
        env = self.env
        micro = self._micro_batches(stage)
        # Per-task token counts of the whole step (all micro-batches, all ranks) fix each task's mean.
        counts = torch.zeros(N_TASKS, dtype=torch.float64)
        for mb in micro:
            counts += torch.bincount(_label_tasks(mb, self.cfg.arch), minlength=N_TASKS).double()
        counts = _all_sum(counts, env.dist, env.device)
        task_scale = L.task_scale(self.alphas, counts, env.world).to(env.device)
        sums, step_tokens = self._accumulate(micro, task_scale)
        max_norm = self.cfg.max_grad_norm
        grad_norm = torch.nn.utils.clip_grad_norm_(stage.params, max_norm) if max_norm else None
        stage.opt.step()
        stage.sched.step()
        stage.opt.zero_grad(set_to_none=True)

        self.state["step"] += 1
        self.state["global_step"] += 1
        sums = _all_sum(sums.cpu(), env.dist, env.device)
        step_tokens = int(_all_sum(torch.tensor([float(step_tokens)]), env.dist, env.device)[0])
        self.state["tokens"] += step_tokens
        self._report_step(stage, counts, sums, step_tokens, grad_norm)

    def _micro_batches(self, stage: _Stage) -> list[dict[str, Any]]:
        """This rank's share of the current step's micro-batches: the step number alone picks the epoch and the
        offset in its plan (only the current epoch's plan is kept), which is what lets resume pick up exactly."""
        epoch, offset = divmod(self.state["step"], self.steps_per_epoch[stage.si])
        if epoch not in stage.epoch_cache:
            stage.epoch_cache = {epoch: self.plan(stage.si, epoch)}
        micro_all = stage.epoch_cache[epoch]
        start = offset * self.per_step
        return [micro_all[(start + j) % len(micro_all)] for j in range(self.per_step)][self.env.rank::self.env.world]

    def _accumulate(self, micro: list[dict[str, Any]], task_scale: torch.Tensor) -> tuple[torch.Tensor, int]:
        """Forward and backward over the micro-batches, gradients summed; DDP syncs them only on the last one.
        Returns this rank's CE sum per task and its label-token count, for the step's loss bookkeeping."""
        env = self.env
        self.model.train()
        sums = torch.zeros(N_TASKS, dtype=torch.float64, device=env.device)
        step_tokens = 0
        for j, mb in enumerate(micro):
            batch = {k: v.to(env.device, non_blocking=True) for k, v in mb.items() if torch.is_tensor(v)}
            last = not env.dist or j == len(micro) - 1
            sync = contextlib.nullcontext() if last else self.train_module.no_sync()
            with sync, env.amp:
                total_loss, ce, tk = self.train_module(batch, task_scale)
                total_loss.backward()
            sums += torch.zeros(N_TASKS, dtype=torch.float64, device=env.device).index_add_(0, tk, ce.double())
            step_tokens += mb["n_tokens"]
        return sums, step_tokens

    def _report_step(self, stage: _Stage, counts: torch.Tensor, sums: torch.Tensor, step_tokens: int,
                     grad_norm) -> None:
        """The step's metrics (loss per task, Σ α·loss, lr, tokens/s, memory) and progress line, from rank 0.

        The throughput window is the step just taken (it restarts after every step)."""
        cfg, state, si = self.cfg, self.state, stage.si
        gstep = state["global_step"]
        stage.window_tokens += step_tokens
        now = time.perf_counter()
        tps = stage.window_tokens / max(now - stage.window_t, 1e-9)
        stage.window_t, stage.window_tokens = now, 0
        task_means = {t: float(sums[i] / counts[i]) for i, t in enumerate(formats.TASKS) if counts[i] > 0}
        step_loss = sum(cfg.weights[t] * v for t, v in task_means.items())
        if self.env.rank == 0:
            self.reporter.metric(gstep, **{f"loss/{t}": v for t, v in task_means.items()}, loss=step_loss,
                                 lr=stage.sched.get_last_lr()[0], tokens_per_s=tps, mem=_mem_mb(self.env.device),
                                 stage=si + 1, grad_norm=float(grad_norm) if grad_norm is not None else None)
            done = gstep
            eta = (self.grand_total - done) * step_tokens / max(tps, 1e-9) if step_tokens else 0
            self.reporter.progress(done, self.grand_total, f"stage {si + 1}/{len(self.stages)} step "
                                   f"{state['step']}/{stage.total} · loss {step_loss:.3f} · {tps:,.0f} tok/s · "
                                   f"ETA {_fmt_s(eta)}")

    # --- dev evaluation and checkpoints

    def _evaluate_and_checkpoint(self, stage: _Stage) -> bool:
        """At an evaluation step: the dev loss (when the stage has dev examples), then last/ unless the stage is
        over (its end saves it). True when early stopping says to end the stage."""
        cfg, state, env = self.cfg, self.state, self.env
        dev = evaluate(self.module, stage.dev, cfg, self.tok, env.device, env.amp, self.alphas) if stage.dev else None
        if dev is not None:
            self._record_dev(stage, dev)
        if state["step"] < stage.total:
            self._checkpoint_last(stage.opt, stage.sched)
        if dev is not None and cfg.patience and state["bad_evals"] >= cfg.patience:
            self.reporter.log(f"early stop: dev loss did not improve for {cfg.patience} evaluations")
            return True
        return False

    def _record_dev(self, stage: _Stage, dev: dict[str, Any]) -> None:
        """Dev metrics, the best-so-far and patience counters, and best/ when this is the best dev loss of the
        final stage (an earlier stage's model is not the product; test data never chooses)."""
        state, gstep = self.state, self.state["global_step"]
        if self.env.rank == 0:
            self.reporter.metric(gstep, **{"dev/loss": dev["loss"]},
                                 **{f"dev/loss/{t}": v for t, v in dev["tasks"].items()})
        better = state["best_dev"] is None or dev["loss"] < state["best_dev"] - 1e-6
        state["best_dev"] = dev["loss"] if better else state["best_dev"]
        state["bad_evals"] = 0 if better else state["bad_evals"] + 1
        if better and stage.final and self.env.rank == 0:
            checkpoints.save(checkpoints.ckpt_dir(self.out_dir, checkpoints.BEST), self.model, self.tok,
                             _meta(self.cfg, self.snapshot_id, gstep, dev_loss=dev["loss"]))
        self.reporter.log(f"step {gstep}: dev loss {dev['loss']:.4f}" + (" (best)" if better else
                          f" (no better for {state['bad_evals']} eval(s))"))
        state["history"].append({"step": gstep, "stage": stage.si + 1, "dev_loss": dev["loss"]})

    def _checkpoint_last(self, opt=None, sched=None) -> None:
        """last/ with the trainer state (and the optimizer and scheduler when given: a resume inside a stage)."""
        env = self.env
        _save_last(self.out_dir, self.model, self.tok, self.cfg, self.snapshot_id, self.state, opt, sched,
                   env.rank, env.dist)

    # --- the ends of a stage and of the run

    def stop(self, stage: _Stage) -> dict[str, Any]:
        """A stop request: last/ with everything a resume needs, then the job's own stop check (it may raise)."""
        self._checkpoint_last(stage.opt, stage.sched)
        self.reporter.log(f"stopped at global step {self.state['global_step']}; resume continues from here")
        if hasattr(self.reporter, "check_stop"):
            self.reporter.check_stop()
        return {"stopped": True, "global_step": self.state["global_step"]}

    def end_stage(self, stage: _Stage) -> dict[str, Any]:
        """A stage that ran to its end or stopped early: stage<N>/ for a stage before the last, the state moved to
        the next stage's start; returns the stage's line of the summary."""
        state, si = self.state, stage.si
        if not stage.final and self.env.rank == 0:
            checkpoints.save(checkpoints.ckpt_dir(self.out_dir, f"stage{si + 1}"), self.model, self.tok,
                             _meta(self.cfg, self.snapshot_id, state["global_step"], stage=si + 1))
        line = {"steps": state["step"], "early_stop": stage.early, "best_dev": state["best_dev"]}
        state.update(stage=si + 1, step=0)
        if not stage.final:
            # A kill right after this resumes at the start of the next stage, with a fresh optimizer.
            for k in ("optimizer", "scheduler", "rng"):
                state.pop(k, None)
            self._checkpoint_last()
        return line

    def finish(self, summary: dict[str, Any]) -> dict[str, Any]:
        """The run's summary (stage lines, counters, dev history, weight fingerprints; under DDP whether every rank
        ended with the same weights), stored in last/ as finished so that a rerun returns it."""
        state, env = self.state, self.env
        summary.update(global_step=state["global_step"], tokens=state["tokens"], best_dev_loss=state["best_dev"],
                       stage_start_fingerprints=state["stage_start_fingerprints"], history=state["history"],
                       final_fingerprint=fingerprint(self.model), world=env.world)
        if env.dist:
            fp = torch.tensor([summary["final_fingerprint"]], dtype=torch.float64)
            lo = _all_reduce(fp.clone(), env.dist, env.device, "min")
            hi = _all_reduce(fp.clone(), env.dist, env.device, "max")
            summary["ranks_in_sync"] = bool(float(hi[0]) == float(lo[0]))
        state.update(finished=True, summary=summary)
        self._checkpoint_last()
        return summary


def result_of(summary: dict[str, Any]) -> dict[str, Any]:
    """What runs.result keeps of `train`'s summary: the headline numbers, not the per-eval history.

    Next to `train` because it reads train's keys; the one-process job and every torchrun rank 0 use it."""
    keep = ("global_step", "tokens", "best_dev_loss", "world", "ranks_in_sync", "stopped")
    out = {k: summary[k] for k in keep if k in summary}
    out.update({k: v for k, v in summary.items() if k.startswith("stage")
                and k != "stage_start_fingerprints"})
    return out


@torch.no_grad()  # the dev pass needs no autograd graph (it was built and thrown away, costing memory)
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
