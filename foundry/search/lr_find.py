"""`foundry lr-find CONFIG`: the learning-rate range test (Smith 2015; fast.ai's lr_find).

    result = lr_range_test(load("baselines/tiny.yaml"), min_lr=1e-6, max_lr=1.0, steps=100)
    result["suggested_lr"], result["steepest_lr"], result["min_loss_lr"]

Builds the model and data exactly as the trainer does, then trains from scratch while the
learning rate grows exponentially from min_lr to max_lr, one step per value, recording the
loss. A bias-corrected running average decides when to stop: once it exceeds `diverge` x its
best, or climbs well back above where it started (a language model's loss rarely grows 4x), or
the loss is not finite. The suggestions use a centered moving average, which does not lag:
`min_loss_lr / 10` (reported as suggested: the loss still falls fast there, well short of the
blow-up) and the steepest descent of the smoothed loss against log(lr). write_outputs() saves the curve
as JSON and as a PNG (foundry/search/plot.py, no plotting library needed).
"""
from __future__ import annotations

import math
import os

import numpy as np
import torch

from foundry import hardware
from foundry.config import Config
from foundry.data import get_batch, load_dataset
from foundry.errors import UserError
from foundry.hardware import autocast
from foundry.io import atomic_write_text, to_json
from foundry.model.gpt import GPT
from foundry.search.plot import plot_png
from foundry.training.losses import LOSSES
from foundry.training.optim import make_optimizer


def lr_range_test(cfg: Config, min_lr: float = 1e-6, max_lr: float = 1.0, steps: int = 100,
                  smooth: float = 0.9, diverge: float = 4.0, log=print) -> dict:
    if not 0 < min_lr < max_lr or steps < 5 or not 0 <= smooth < 1 or diverge <= 1:
        raise UserError(f"lr-find: need 0 < min_lr < max_lr, steps >= 5, smooth in [0, 1), diverge > 1 "
                        f"(got {min_lr}, {max_lr}, {steps}, {smooth}, {diverge})")
    device = hardware.pick_device(cfg.train.device)
    torch.manual_seed(cfg.train.seed)
    data = load_dataset(cfg.data)
    cfg.model.vocab_size = cfg.model.vocab_size or data.tokenizer.vocab_size
    model = GPT(cfg.model).to(device).train()
    loss_fn = LOSSES[cfg.train.loss](cfg.train)
    optimizer = make_optimizer(model, cfg, device)
    rng = np.random.default_rng(cfg.train.seed)
    lrs, losses, smoothed = [], [], []
    average, best, stop_reason = 0.0, math.inf, "reached max_lr"
    for i in range(steps):
        lr = min_lr * (max_lr / min_lr) ** (i / (steps - 1))
        for group in optimizer.param_groups:
            group["lr"] = lr
        loss_sum = 0.0
        for _ in range(cfg.train.grad_accum):
            x, y = get_batch(data.train, cfg.train.batch_size, cfg.model.block_size, rng)
            x, y = x.to(device), y.to(device)
            with autocast(device, cfg):
                loss = loss_fn(model(x), y)  # (B, T, V) logits against (B, T) targets
                aux = model.aux_loss()
                total = loss + aux if aux is not None else loss
            (total / cfg.train.grad_accum).backward()
            loss_sum += loss.item()
        if cfg.train.grad_clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.train.grad_clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        value = loss_sum / cfg.train.grad_accum
        if not math.isfinite(value):
            stop_reason = f"loss not finite at lr {lr:.3g}"
            break
        average = smooth * average + (1 - smooth) * value
        current = average / (1 - smooth ** (i + 1))  # bias correction of the moving average
        lrs.append(lr), losses.append(value), smoothed.append(current)
        best = min(best, current)
        climbed_back = i >= steps // 5 and current > smoothed[0]  # worse than at the start
        if current > diverge * best or climbed_back:
            stop_reason = f"diverged at lr {lr:.3g} (smoothed loss {current:.3f}, best {best:.3f})"
            break
    log(f"lr-find: {len(lrs)} steps from {min_lr:g}; {stop_reason}")
    centered = centered_average(losses, max(1, steps // 25))
    return {"config": cfg.name, "lrs": lrs, "losses": losses, "smoothed": centered, "stop_reason": stop_reason,
            **suggest(lrs, centered)}


def centered_average(values: list[float], half_width: int) -> list[float]:
    """Moving average over i-w..i+w: unlike the running average it does not lag behind the lr."""
    out = []
    for i in range(len(values)):
        window = values[max(0, i - half_width):i + half_width + 1]
        out.append(sum(window) / len(window))
    return out


def suggest(lrs: list[float], smoothed: list[float]) -> dict:
    """min_loss_lr / 10 and the steepest descent of the smoothed curve before its minimum."""
    if len(lrs) < 3:
        raise UserError("lr-find: the loss diverged within the first steps; lower --min-lr")
    i_min = int(np.argmin(smoothed))
    log_lr = np.log(lrs)
    slopes = np.gradient(np.asarray(smoothed), log_lr)
    skip = max(1, len(lrs) // 10)  # the first points carry the moving average's warm-up
    window = slopes[skip:i_min + 1] if i_min > skip else slopes[:i_min + 1]
    offset = skip if i_min > skip else 0
    i_steep = offset + int(np.argmin(window)) if len(window) else i_min
    return {"min_loss_lr": lrs[i_min], "min_loss": smoothed[i_min], "steepest_lr": lrs[i_steep],
            "suggested_lr": lrs[i_min] / 10}


def write_outputs(result: dict, out_dir: str) -> tuple[str, str]:
    """OUT/lr_find.json (the curve and suggestions) and OUT/lr_find.png (raw grey, smoothed blue,
    suggested lr red, steepest green)."""
    json_path, png_path = os.path.join(out_dir, "lr_find.json"), os.path.join(out_dir, "lr_find.png")
    atomic_write_text(json_path, to_json(result, indent=1) + "\n")
    smoothed = result["smoothed"]
    y_range = (min(smoothed) - 0.05 * abs(min(smoothed)), max(smoothed[0], min(smoothed) * 1.5))
    plot_png(png_path, [(result["lrs"], result["losses"], (190, 190, 190)), (result["lrs"], smoothed, (40, 90, 200))],
             vlines=[(result["suggested_lr"], (200, 40, 40)), (result["steepest_lr"], (40, 160, 60))],
             log_x=True, y_range=y_range)
    return json_path, png_path
