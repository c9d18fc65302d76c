"""Equal compute: every candidate trains the token budget (or the FLOPs) of the baseline it is judged against.

    cfg, note = equalize(baseline, candidate, "tokens")   # candidate's budget rescaled; note says how
    tokens, flops = trained(summary)                      # what a finished trial really trained

A mutation that changes tokens per step (context, batch size) under a step budget would otherwise
train more or fewer tokens than its baseline, and win or lose by compute rather than by idea.
`promotion.equal: tokens` gives every candidate the baseline's tokens (its budget written in
the baseline's form, steps or tokens, rounded to whole steps); `flops` gives it the baseline's
training FLOPs (tokens x the baseline's FLOPs per token / the candidate's). A wall-clock budget
(budget.seconds) is left alone: both sides get the same seconds. After training, the supervisor
compares what the two sides really trained (`check`) and refuses a comparison that differs.
"""
from __future__ import annotations

import torch

from foundry.config import Config
from foundry.mutate.edit import with_values

EQUAL_MODES = ("tokens", "flops")
TOLERANCE = 0.02   # relative difference in tokens or FLOPs still counted as equal (whole steps)


def budget_tokens(cfg: Config) -> int | None:
    """Tokens the budget trains; None for a wall-clock budget."""
    steps = cfg.max_steps()
    return None if steps is None else steps * cfg.tokens_per_step


def flops_per_token(cfg: Config, vocab_size: int) -> int:
    """Training FLOPs per token of cfg's model (built on the meta device: no memory, no time)."""
    from foundry.model.gpt import GPT

    model_cfg = with_values(cfg, {"model.vocab_size": cfg.model.vocab_size or vocab_size}).model
    with torch.device("meta"):
        return GPT(model_cfg).flops_per_token()


def equalize(baseline: Config, cfg: Config, mode: str = "tokens", vocab_size: int = 0) -> tuple[Config, str]:
    """cfg with a budget of the baseline's tokens (mode tokens) or FLOPs (mode flops); a note when changed."""
    target = budget_tokens(baseline)
    if target is None:
        if cfg.budget != baseline.budget:
            return with_values(cfg, {"budget.tokens": 0, "budget.steps": 0,
                                     "budget.seconds": baseline.budget.seconds}), "budget: the baseline's seconds"
        return cfg, ""
    if mode == "flops":
        target = round(target * flops_per_token(baseline, vocab_size) / flops_per_token(cfg, vocab_size))
    if baseline.budget.steps:
        updates = {"budget.tokens": 0, "budget.seconds": 0.0,
                   "budget.steps": max(1, round(target / cfg.tokens_per_step))}
    else:
        updates = {"budget.tokens": target, "budget.steps": 0, "budget.seconds": 0.0}
    if all(getattr(cfg.budget, k.split(".")[1]) == v for k, v in updates.items()):
        return cfg, ""
    new = with_values(cfg, updates)
    was = f"{cfg.budget.steps} steps" if cfg.budget.steps else f"{cfg.budget.tokens} tokens"
    now = f"{new.budget.steps} steps" if new.budget.steps else f"{new.budget.tokens} tokens"
    return new, f"budget {was} -> {now} (the baseline's {mode})"


def trained(summary: dict | None) -> tuple[float | None, float | None]:
    """(tokens, FLOPs) a finished trial trained, from its summary.json."""
    s = summary or {}
    return s.get("train_tokens"), s.get("train_flops")


def check(baseline_summaries: list, candidate_summaries: list, mode: str) -> tuple[dict, str]:
    """({side: {tokens, flops}} means, "" or the reason the two sides are not comparable)."""
    out = {}
    for side, summaries in (("baseline", baseline_summaries), ("candidate", candidate_summaries)):
        pairs = [trained(s) for s in summaries]
        tokens = [t for t, _ in pairs if t is not None]
        flops = [f for _, f in pairs if f is not None]
        out[side] = {"tokens": sum(tokens) / len(tokens) if tokens else None,
                     "flops": sum(flops) / len(flops) if flops else None}
    key = "tokens" if mode == "tokens" else "flops"
    b, c = out["baseline"][key], out["candidate"][key]
    if b and c and abs(c - b) / b > TOLERANCE:
        return out, (f"unequal compute: the candidate trained {c:.4g} {key}, the baseline {b:.4g} "
                     f"(promotion.equal: {mode})")
    return out, ""


def describe(compute: dict) -> str:
    """One line for logs and commits: tokens and FLOPs of both sides."""
    def side(name):
        v = compute.get(name) or {}
        tokens = f"{v['tokens']:,.0f} tokens" if v.get("tokens") is not None else "? tokens"
        flops = f"{v['flops']:.3g} FLOPs" if v.get("flops") is not None else "? FLOPs"
        return f"{name} {tokens}, {flops}"
    return f"{side('baseline')}; {side('candidate')}"
