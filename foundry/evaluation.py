"""Validation loss and bits per byte on a fixed slice: the one implementation of the metric.

    metrics = val_metrics(model, dataset.val, cfg, dataset.val_bytes_per_token, device)
    # {"val_loss": nats per token, "val_bpb": bits per byte of raw text}

The slice is the first `eval.batches * train.batch_size` non-overlapping windows of the
validation split (fewer if the split is short), so every run of every variant sees the same
text. Bits per byte divide out the tokenizer, so byte, char and BPE runs compare fairly.
The benchmark harness reuses this function; AGENTS.md marks it frozen.
"""
import math

import numpy as np
import torch
import torch.nn.functional as F

from foundry.hardware import autocast


def val_windows(tokens, block_size: int, n_windows: int):
    """(N, block_size + 1) int64 array of non-overlapping windows from the start of `tokens`."""
    available = (len(tokens) - 1) // block_size
    n = min(n_windows, available)
    if n <= 0:
        raise ValueError(f"validation split has {len(tokens)} tokens; need more than block_size={block_size}")
    starts = np.arange(n) * block_size
    return np.stack([np.asarray(tokens[s:s + block_size + 1], dtype=np.int64) for s in starts])


@torch.no_grad()
def val_metrics(model, tokens, cfg, bytes_per_token: float, device, batches=None) -> dict:
    """Mean next-token cross-entropy over the fixed slice, and the same in bits per byte."""
    block, batch = cfg.model.block_size, cfg.train.batch_size
    windows = val_windows(tokens, block, (batches or cfg.eval.batches) * batch)
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    eval_batch = max(batch, 32)  # forward only: larger batches are cheaper per token
    for i in range(0, len(windows), eval_batch):
        chunk = torch.from_numpy(windows[i:i + eval_batch]).to(device)
        with autocast(device, cfg):
            logits = model(chunk[:, :-1])
        loss = F.cross_entropy(logits.flatten(0, 1).float(), chunk[:, 1:].flatten(), reduction="sum")
        total += loss.item()
        count += chunk[:, 1:].numel()
    model.train(was_training)
    val_loss = total / count
    return {"val_loss": val_loss, "val_bpb": val_loss / math.log(2) / bytes_per_token}
