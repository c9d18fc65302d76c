"""The training loop: one config in, one run folder out.

    from foundry.training.loop import train
    summary = train(cfg, "runs/tiny")          # or: foundry train baselines/tiny.yaml --out runs/tiny

    session = setup(cfg, "runs/tiny")          # the same in parts: build (or resume) everything,
    loss, lr, grad_norm, stats = train_step(session)   # then one optimizer step at a time

AdamW (fused/foreach), linear warmup + cosine decay to min_lr, clipping, accumulation,
optional EMA, bf16 autocast (train.dtype), a budget in tokens, steps or seconds, periodic eval on
the fixed validation slice, checkpoints that resume onto the same loss curve, TensorBoard
events, and a run folder described in run_files.py. How many processes train the model is
parallel.py's business (under torchrun: DDP or FSDP, rank 0 alone writing the run folder, the
step's loss and the evaluation averaged over ranks). A NaN/inf loss, or a loss above
train.diverge_factor x the first loss, ends the run with status `diverged`. Pruning masks (from a
pruned train.init_from, or train.prune applied to it here) are re-applied after every optimizer step.
"""
from __future__ import annotations

import contextlib
import copy
import math
import os
import signal
import time
from dataclasses import dataclass

import numpy as np
import torch

from foundry import hardware
from foundry.catalog import check_fits
from foundry.config import Config, config_hash
from foundry.errors import UserError
from foundry.hardware import autocast
from foundry.model.gpt import GPT
from foundry.training import parallel
from foundry.training.objectives import build_objective
from foundry.training.optim import lr_at, make_optimizer
from foundry.training.run_files import RunFiles
from foundry.weights.checkpoint import (
    check_resumable,
    find_checkpoint,
    find_start_weights,
    load_start_weights,
    load_training_state,
    save_checkpoint,
)
from foundry.weights.lora import apply_lora
from foundry.weights.masks import apply_masks, masked_weights

COMPILE_WARMUP_STEPS = 3  # with train.compile: steps whose time includes compilation


CODE_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.realpath(__file__))))   # ROOT/foundry/training


class _Stop:
    """SIGINT/SIGTERM set a flag; the loop checkpoints and exits as `interrupted`."""

    def __init__(self):
        self.requested = False

    def __enter__(self):
        self.previous = {s: signal.signal(s, self._handle) for s in (signal.SIGINT, signal.SIGTERM)}
        return self

    def _handle(self, signum, frame):
        self.requested = True

    def __exit__(self, *exc):
        for s, handler in self.previous.items():
            signal.signal(s, handler)


@dataclass
class Session:
    """Everything one training run holds; `setup` builds it, `train_step` advances it."""
    cfg: Config
    out_dir: str
    device: torch.device
    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    objective: object
    files: RunFiles
    rng: np.random.Generator
    strategy: object
    ema: torch.nn.Module | None = None
    step: int = 0
    tokens: int = 0
    train_seconds: float = 0.0
    first_loss: float | None = None
    masked: list | None = None  # (weight, mask) of every pruned layer, re-applied after each step

    def state(self) -> dict:
        """What a checkpoint records beside the weights, to resume onto the same curve."""
        return {"step": self.step, "tokens": self.tokens, "train_seconds": self.train_seconds,
                "first_loss": self.first_loss, "rng": self.rng.bit_generator.state}

    def progress_fraction(self) -> float:
        max_steps = self.cfg.max_steps()
        return self.step / max_steps if max_steps else min(1.0, self.train_seconds / self.cfg.budget.seconds)

    def save(self) -> None:
        model, optimizer = self.strategy.full_state(self.model, self.optimizer)   # gathered to rank 0 under FSDP
        if self.strategy.is_main:
            save_checkpoint(self.out_dir, model, optimizer, self.cfg, self.objective.tokenizer, self.state(), self.ema,
                            self.objective.parameters())
        self.strategy.barrier()


def setup(cfg: Config, out_dir, resume: bool = False, log=print) -> Session:
    """Build the model (from init_from, with LoRA), optimizer, EMA, objective and run files;
    with `resume`, restore them from the run's checkpoint."""
    cfg = copy.deepcopy(cfg)
    launch = parallel.launch_env()
    device = parallel.pick_device(cfg.train.device, launch)
    threads, why = hardware.choose_threads(cfg.train.threads)
    torch.set_num_threads(threads)
    if device.type == "cpu" and cfg.train.keep_freed_memory:
        hardware.keep_freed_memory()
    torch.manual_seed(cfg.train.seed)
    start_weights = find_start_weights(cfg.train.init_from) if cfg.train.init_from else None
    objective = build_objective(cfg, device, start_weights[1] if start_weights else None)
    cfg.model.vocab_size = cfg.model.vocab_size or objective.tokenizer.vocab_size
    if cfg.model.vocab_size < objective.tokenizer.vocab_size:
        raise UserError(f"model.vocab_size={cfg.model.vocab_size} < the tokenizer's {objective.tokenizer.vocab_size}")
    if cfg.model_kind == "fusion":  # frozen experts read from their checkpoints and placed per device
        from foundry.fusion.experts import build_from_experts
        model = build_from_experts(cfg, device, log)
        parts = model.optimizer_groups(cfg.train.lr)  # adapters and routers only, each at its own lr
    else:
        check_fits(cfg)   # before allocating: a model too large for memory is refused with the estimate
        model = GPT(cfg.model)
        if start_weights:
            load_start_weights(model, start_weights[0], cfg.train.init_from)
        if cfg.train.prune.method:
            from foundry.prune.run import prune_for_training
            report = prune_for_training(model.to(device), cfg, objective.data.train)
            log(f"pruned {cfg.train.init_from} with {report['method']} to sparsity {report['sparsity']:.4f}")
        model, parts = apply_lora(model, cfg.train).to(device), None
    strategy = parallel.pick_strategy(cfg, model, launch, device)   # joins the process group under torchrun
    log = log if strategy.is_main else _quiet
    if strategy.world_size > 1:
        objective.shard(strategy.rank, strategy.world_size)
    objective.start(model)
    files = RunFiles(out_dir, cfg) if strategy.is_main else parallel.NoRunFiles()
    ema = copy.deepcopy(model).requires_grad_(False) if cfg.train.ema > 0 else None
    checkpoint = find_checkpoint(out_dir) if resume else None
    optimizer_state = parallel.HeldState()   # the optimizer is built after wrapping (FSDP replaces parameters)
    if checkpoint:   # weights before wrapping: every rank loads them, FSDP then shards them
        check_resumable(checkpoint, cfg)
        progress = load_training_state(checkpoint, model, optimizer_state, ema, objective.parameters())
    masked = masked_weights(model)   # (weight, mask) pairs of a pruned model, before wrapping
    if cfg.train.compile:
        model.compile()  # in place: the state dict keeps its names
    wrapped = strategy.wrap(model)
    optimizer = make_optimizer(wrapped, cfg, device, parts, objective.parameters())
    session = Session(cfg, os.fspath(out_dir), device, wrapped, optimizer, objective,
                      files, np.random.default_rng(cfg.train.seed), strategy, ema)
    session.masked = masked
    if checkpoint:
        try:
            strategy.load_optimizer_state(wrapped, session.optimizer, optimizer_state.state)
        except (ValueError, KeyError, IndexError) as e:
            raise UserError(f"{checkpoint}/state.pt: the optimizer state does not fit this run ({e})") from None
        session.step, session.tokens = progress["step"], progress["tokens"]
        session.train_seconds, session.first_loss = progress["train_seconds"], progress["first_loss"]
        session.rng.bit_generator.state = progress["rng"]
        log(f"resumed from {checkpoint} at step {session.step}")
    if strategy.world_size > 1:   # dropout: each rank its own masks, from a seed of (seed, rank, step)
        torch.manual_seed(hash((cfg.train.seed, strategy.rank, session.step)) % 2**63)
    files.start(model, objective.description, objective.tokenizer.name, device, session.step,
                threads=f"{threads} thread{'s' * (threads > 1)} ({why})")
    return session


def _quiet(*args, **kwargs) -> None:
    """The log of ranks other than 0."""


def train_step(s: Session) -> tuple[float, float, float, dict]:
    """One optimizer step over grad_accum micro-batches -> (mean loss, lr, grad norm, stats to log)."""
    cfg, model = s.cfg, s.model
    t0 = time.perf_counter()
    lr = lr_at(cfg, s.step, cfg.max_steps(), s.progress_fraction())
    for group in s.optimizer.param_groups:
        group["lr"] = lr * group.get("lr_scale", 1.0)
    s.objective.progress = s.progress_fraction()  # what a curriculum's schedule reads
    loss_sum = torch.zeros((), device=s.device)  # summed on the device: one host sync per step, not per micro-step
    for micro in range(cfg.train.grad_accum):
        inner = micro < cfg.train.grad_accum - 1  # gradients are synchronised on the last micro-step only
        with s.strategy.no_sync(model) if inner else contextlib.nullcontext():
            with autocast(s.device, cfg):
                loss = s.objective.micro_loss(model, s.rng)
                aux = s.strategy.unwrap(model).aux_loss()
                total = loss + aux if aux is not None else loss
            (total / cfg.train.grad_accum).backward()
        loss_sum += loss.detach()
    grad_norm = s.strategy.clip_grad_norm([p for group in s.optimizer.param_groups for p in group["params"]],
                                          cfg.train.grad_clip or float("inf"))   # the objective's tensors too
    s.optimizer.step()
    s.optimizer.zero_grad(set_to_none=True)
    apply_masks(s.masked or ())
    if s.ema is not None:
        with torch.no_grad():
            torch._foreach_lerp_(list(s.ema.parameters()), list(model.parameters()), 1 - cfg.train.ema)
    s.step += 1
    s.tokens += cfg.tokens_per_step
    seconds = time.perf_counter() - t0
    stats = {**s.strategy.unwrap(model).ffn_stats(), **s.objective.stats()}  # MoE load, DPO reward, ...
    # the step's numbers to the host in one transfer, averaged over ranks (so all agree on the
    # loss and the clock): loss, grad norm, the stats, then the step's seconds
    values = s.strategy.reduce_mean(torch.stack([
        loss_sum / cfg.train.grad_accum, grad_norm.float(),
        *(torch.as_tensor(v, dtype=torch.float32, device=s.device) for v in stats.values()),
        torch.tensor(seconds, dtype=torch.float32, device=s.device)])).tolist()
    s.train_seconds += seconds if s.strategy.world_size == 1 else values[-1]
    return values[0], lr, values[1], dict(zip(stats, values[2:-1]))


def train(cfg: Config, out_dir, resume: bool = False, stop_after_steps: int | None = None,
          log=print) -> dict:
    """Train `cfg` into `out_dir`; returns the summary (also written to summary.json).

    stop_after_steps ends the run early as `interrupted` (tests use it to simulate a crash).
    """
    wall_start = time.time()
    s = setup(cfg, out_dir, resume, log)
    cfg, files = s.cfg, s.files
    log = log if s.strategy.is_main else _quiet
    max_steps, seconds = cfg.max_steps(), cfg.budget.seconds
    model = s.strategy.unwrap(s.model)
    n_params, flops = model.num_params(), model.flops_per_token()
    peak = hardware.peak_flops(s.device) * s.strategy.world_size   # every rank has a device
    status, metrics, last_eval_step, loss_value = "done", {}, -1, s.first_loss
    start_step, warm = s.step, (0, 0.0)

    def evaluate():
        nonlocal metrics, last_eval_step
        metrics = s.objective.evaluate(s.ema or model)
        if s.strategy.world_size > 1:   # each rank scored its share of the slice (or all of it)
            means = s.strategy.reduce_mean(torch.tensor(list(metrics.values()), dtype=torch.float64, device=s.device))
            metrics = dict(zip(metrics, means.tolist()))
        last_eval_step = s.step
        files.scalars(s.step, metrics)

    s.model.train()
    with _Stop() as stop:
        while (max_steps and s.step < max_steps) or (not max_steps and s.train_seconds < seconds):
            if s.strategy.any(stop.requested) or (stop_after_steps is not None and s.step >= stop_after_steps):
                status = "interrupted"
                break
            loss_value, lr, grad_norm, stats = train_step(s)
            if cfg.train.compile and s.step - start_step == COMPILE_WARMUP_STEPS:
                warm = (s.tokens, s.train_seconds)  # compilation happens in these steps: not in tokens/s
            s.first_loss = s.first_loss if s.first_loss is not None else loss_value
            files.step(s.step, loss_value, lr, grad_norm, s.tokens, s.train_seconds, max_steps,
                       s.progress_fraction(), stats)
            if not math.isfinite(loss_value) or loss_value > cfg.train.diverge_factor * s.first_loss:
                status = "diverged"
                log(f"diverged at step {s.step}: loss {loss_value:.4g} (first loss {s.first_loss:.4g})")
                break
            if s.step % cfg.eval.interval == 0:
                evaluate()
                s.save()
            elif cfg.train.checkpoint_interval and s.step % cfg.train.checkpoint_interval == 0:
                s.save()
    if status != "diverged":
        if last_eval_step != s.step:
            evaluate()
        s.save()
    timed_tokens, timed_seconds = s.tokens - warm[0], s.train_seconds - warm[1]
    tokens_per_s = timed_tokens / timed_seconds if timed_seconds > 0 else 0.0
    summary = {
        "status": status, "val_loss": metrics.get("val_loss"), "val_bpb": metrics.get("val_bpb"),
        "train_loss": loss_value, "train_tokens": s.tokens, "steps": s.step,
        "tokens_per_s": tokens_per_s, "mfu": flops * tokens_per_s / peak if peak else None,
        "params": n_params, "flops_per_token": flops, "train_flops": flops * s.tokens,
        "peak_mem_mb": hardware.peak_memory_mb(s.device), "wall_s": time.time() - wall_start,
        "config_hash": config_hash(cfg), "name": cfg.name, "seed": cfg.train.seed,
        "device": hardware.describe(s.device), "threads": torch.get_num_threads(), "data": s.objective.meta,
        "code_root": CODE_ROOT,   # the folder this trainer's foundry package was imported from
        "eval": metrics,  # every number of the last evaluation (per source for a fused model)
        "strategy": s.strategy.name, "world_size": s.strategy.world_size,
    }
    if status == "done" and cfg.eval.tasks and s.strategy.is_main:
        summary.update(run_eval_tasks(cfg, out_dir, s.device, log))
    files.finish(summary, s.progress_fraction())
    s.strategy.close()
    return summary


def run_eval_tasks(cfg: Config, out_dir, device, log) -> dict:
    """Score the final checkpoint on eval.tasks; rank_score (higher is better) combines them."""
    from foundry.benchmarks import EvalOptions, load_target, rank_score, run_tasks
    lm = load_target(os.fspath(out_dir), device=str(device))
    results = run_tasks(lm, cfg.eval.tasks, EvalOptions(limit=cfg.eval.limit, seed=cfg.train.seed), log=log)
    weights = cfg.eval.rank or {task: 1.0 for task in cfg.eval.tasks}
    tasks = {name: {k: r[k] for k in ("metric", "score", "centered", "rank_value", "n")} for name, r in results.items()}
    return {"tasks": tasks, "rank_score": rank_score(results, weights)}
