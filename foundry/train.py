"""The training loop: one config in, one run folder out.

    from foundry.train import train
    summary = train(cfg, "runs/tiny")          # or: foundry train baselines/tiny.yaml --out runs/tiny

AdamW (fused/foreach), linear warmup + cosine decay to min_lr, clipping, accumulation,
optional EMA, bf16 autocast on CUDA, a budget in tokens, steps or seconds, periodic eval on
the fixed validation slice, checkpoints that resume onto the same loss curve, TensorBoard
events, and a run folder described in foundry/run_files.py. A NaN/inf loss, or a loss above
train.diverge_factor x the first loss, ends the run with status `diverged`.
"""
from __future__ import annotations

import copy
import math
import os
import signal
import time

import numpy as np
import torch

from foundry import hardware
from foundry.checkpoint import (find_checkpoint, find_start_weights, load_start_weights, load_training_state,
                                save_checkpoint)
from foundry.config import Config, config_hash
from foundry.errors import UserError
from foundry.evaluation import autocast
from foundry.lora import apply_lora
from foundry.model import GPT
from foundry.objectives import build_objective
from foundry.run_files import RunFiles


def lr_at(cfg: Config, step: int, max_steps: int | None, time_fraction: float = 0.0) -> float:
    """Linear warmup over warmup_steps, then cosine from lr to min_lr over the rest of the run.

    With a wall-clock budget (max_steps None) the decay follows the elapsed share of time.
    """
    t = cfg.train
    if step < t.warmup_steps:
        return t.lr * (step + 1) / t.warmup_steps
    if max_steps:
        progress = (step - t.warmup_steps) / max(1, max_steps - t.warmup_steps)
    else:
        progress = time_fraction
    cosine = 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
    return t.min_lr + cosine * (t.lr - t.min_lr)


def make_optimizer(model, cfg: Config, device):
    """AdamW; weight decay on matrices only (not norms, biases or 1-D gains)."""
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [{"params": [p for p in params if p.dim() >= 2], "weight_decay": cfg.train.weight_decay},
              {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]
    kwargs = dict(lr=cfg.train.lr, betas=tuple(cfg.train.betas))
    try:
        return torch.optim.AdamW(groups, fused=True, **kwargs)
    except (RuntimeError, TypeError):  # no fused kernel for this device/dtype
        return torch.optim.AdamW(groups, foreach=True, **kwargs)


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


def train(cfg: Config, out_dir, resume: bool = False, stop_after_steps: int | None = None,
          log=print) -> dict:
    """Train `cfg` into `out_dir`; returns the summary (also written to summary.json).

    stop_after_steps ends the run early as `interrupted` (tests use it to simulate a crash).
    """
    cfg = copy.deepcopy(cfg)
    wall_start = time.time()
    device = hardware.pick_device(cfg.train.device)
    torch.manual_seed(cfg.train.seed)
    start_weights = find_start_weights(cfg.train.init_from) if cfg.train.init_from else None
    objective = build_objective(cfg, device, start_weights[1] if start_weights else None)
    cfg.model.vocab_size = cfg.model.vocab_size or objective.tokenizer.vocab_size
    if cfg.model.vocab_size < objective.tokenizer.vocab_size:
        raise UserError(f"model.vocab_size={cfg.model.vocab_size} < the tokenizer's {objective.tokenizer.vocab_size}")
    model = GPT(cfg.model)
    if start_weights:
        load_start_weights(model, start_weights[0], cfg.train.init_from)
    model = apply_lora(model, cfg.train).to(device)
    files = RunFiles(out_dir, cfg)
    optimizer = make_optimizer(model, cfg, device)
    ema = copy.deepcopy(model).requires_grad_(False) if cfg.train.ema > 0 else None
    objective.start(model)
    rng = np.random.default_rng(cfg.train.seed)
    step, tokens, train_seconds, first_loss = 0, 0, 0.0, None
    checkpoint = find_checkpoint(out_dir) if resume else None
    if checkpoint:
        progress = load_training_state(checkpoint, model, optimizer, ema)
        step, tokens, train_seconds = progress["step"], progress["tokens"], progress["train_seconds"]
        first_loss = progress["first_loss"]
        rng.bit_generator.state = progress["rng"]
        files.truncate_metrics(step)
        log(f"resumed from {checkpoint} at step {step}")
    files.start(model, objective.description, objective.tokenizer.name, device, resumed=bool(checkpoint))

    max_steps, seconds = cfg.max_steps(), cfg.budget.seconds
    n_params, flops = model.num_params(), model.flops_per_token()
    peak = hardware.peak_flops(device)
    status, metrics, last_eval_step, loss_value = "done", {}, -1, first_loss

    def progress_fraction():
        return step / max_steps if max_steps else min(1.0, train_seconds / seconds)

    def state():
        return {"step": step, "tokens": tokens, "train_seconds": train_seconds,
                "first_loss": first_loss, "rng": rng.bit_generator.state}

    def evaluate():
        nonlocal metrics, last_eval_step
        metrics = objective.evaluate(ema or model)
        last_eval_step = step
        files.scalars(step, metrics)

    model.train()
    with _Stop() as stop:
        while (max_steps and step < max_steps) or (not max_steps and train_seconds < seconds):
            if stop.requested or (stop_after_steps is not None and step >= stop_after_steps):
                status = "interrupted"
                break
            t0 = time.perf_counter()
            lr = lr_at(cfg, step, max_steps, progress_fraction())
            for group in optimizer.param_groups:
                group["lr"] = lr
            loss_sum = 0.0
            for _ in range(cfg.train.grad_accum):
                with autocast(device, cfg):
                    loss = objective.micro_loss(model, rng)
                    aux = model.aux_loss()
                    total = loss + aux if aux is not None else loss
                (total / cfg.train.grad_accum).backward()
                loss_sum += loss.item()
            grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.train.grad_clip or float("inf"))
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            if ema is not None:
                with torch.no_grad():
                    torch._foreach_lerp_(list(ema.parameters()), list(model.parameters()), 1 - cfg.train.ema)
            step += 1
            tokens += cfg.tokens_per_step
            train_seconds += time.perf_counter() - t0
            loss_value = loss_sum / cfg.train.grad_accum
            first_loss = first_loss if first_loss is not None else loss_value
            files.step(step, loss_value, lr, float(grad_norm), tokens, train_seconds, max_steps, progress_fraction())
            if not math.isfinite(loss_value) or loss_value > cfg.train.diverge_factor * first_loss:
                status = "diverged"
                log(f"diverged at step {step}: loss {loss_value:.4g} (first loss {first_loss:.4g})")
                break
            if step % cfg.eval.interval == 0:
                evaluate()
                save_checkpoint(out_dir, model, optimizer, cfg, objective.tokenizer, state(), ema)
            elif cfg.train.checkpoint_interval and step % cfg.train.checkpoint_interval == 0:
                save_checkpoint(out_dir, model, optimizer, cfg, objective.tokenizer, state(), ema)
    if status != "diverged":
        if last_eval_step != step:
            evaluate()
        save_checkpoint(out_dir, model, optimizer, cfg, objective.tokenizer, state(), ema)
    tokens_per_s = tokens / train_seconds if train_seconds else 0.0
    summary = {
        "status": status, "val_loss": metrics.get("val_loss"), "val_bpb": metrics.get("val_bpb"),
        "train_loss": loss_value, "train_tokens": tokens, "steps": step,
        "tokens_per_s": tokens_per_s, "mfu": flops * tokens_per_s / peak if peak else None,
        "params": n_params, "flops_per_token": flops, "train_flops": flops * tokens,
        "peak_mem_mb": hardware.peak_memory_mb(device), "wall_s": time.time() - wall_start,
        "config_hash": config_hash(cfg), "name": cfg.name, "seed": cfg.train.seed,
        "device": hardware.describe(device), "data": objective.meta,
    }
    if status == "done" and cfg.eval.tasks:
        summary.update(run_eval_tasks(cfg, out_dir, device, log))
    files.finish(summary)
    return summary


def run_eval_tasks(cfg: Config, out_dir, device, log) -> dict:
    """Score the final checkpoint on eval.tasks; rank_score (higher is better) combines them."""
    from foundry.benchmarks import EvalOptions, load_target, rank_score, run_tasks
    lm = load_target(os.fspath(out_dir), device=str(device))
    results = run_tasks(lm, cfg.eval.tasks, EvalOptions(limit=cfg.eval.limit, seed=cfg.train.seed), log=log)
    weights = cfg.eval.rank or {task: 1.0 for task in cfg.eval.tasks}
    tasks = {name: {k: r[k] for k in ("metric", "score", "centered", "rank_value", "n")} for name, r in results.items()}
    return {"tasks": tasks, "rank_score": rank_score(results, weights)}
