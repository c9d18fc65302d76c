"""Validation loss and bits per byte on a fixed slice of text: the one implementation of the metric.

    tokens, bytes_per_token = val_slice(dataset.val, dataset.tokenizer.decode, cfg.eval.bytes)
    metrics = val_metrics(model, tokens, cfg, bytes_per_token, device)
    # {"val_loss": nats per scored token, "val_bpb": bits per byte of the scored text}

The slice is the first `eval.bytes` bytes of the validation split's text (0 = the whole split),
cut at a token boundary. It does not depend on the batch size, the context length or the
tokenizer, so every variant of a campaign is scored on the same text. Every token of the slice
after the first is predicted exactly once: the slice is cut into windows of block_size + 1 tokens
that overlap by one (the last window shorter), so a longer context sees more history per token
but scores the same tokens. Bits per byte divide out the tokenizer, so byte, char and BPE runs
compare fairly. The benchmark harness reuses this function; AGENTS.md marks it frozen.
(Before this definition the slice was eval.batches x train.batch_size windows of block_size:
variants changing batch or context were scored on different text.)
"""
import math

import numpy as np
import torch
import torch.nn.functional as F

from foundry.hardware import autocast


def _text_bytes(decode, tokens) -> int:
    return len(decode(tokens).encode("utf-8"))


def val_slice(tokens, decode, n_bytes: int) -> tuple[np.ndarray, float]:
    """(the leading tokens whose text is the first `n_bytes` bytes, UTF-8 bytes per scored token).

    `decode` maps token ids to text (the tokenizer's). n_bytes = 0 takes every token. The cut is
    the longest token prefix whose text fits in n_bytes; the first token is context only, so
    bytes per token are counted over the tokens after it.
    """
    tokens = np.asarray(tokens)
    if n_bytes <= 0:
        k = len(tokens)
    else:   # every token is at least one byte: the prefix has at most n_bytes tokens
        lo, hi = 1, min(len(tokens), n_bytes)
        while lo < hi:   # the longest prefix whose text fits
            mid = (lo + hi + 1) // 2
            if _text_bytes(decode, tokens[:mid]) <= n_bytes:
                lo = mid
            else:
                hi = mid - 1
        k = lo
    if k < 2:
        raise ValueError(f"the validation slice holds {k} token(s) ({len(tokens)} in the split, "
                         f"eval.bytes={n_bytes}); need at least 2")
    scored_bytes = _text_bytes(decode, tokens[:k]) - _text_bytes(decode, tokens[:1])
    return tokens[:k], max(1, scored_bytes) / (k - 1)


def val_windows(tokens, block_size: int) -> list[np.ndarray]:
    """The slice as int64 arrays of windows: (N, block_size + 1) full ones, then (1, r + 1) for the rest."""
    tokens = np.asarray(tokens, dtype=np.int64)
    n_full, rest = divmod(len(tokens) - 1, block_size)
    if n_full + rest == 0:
        raise ValueError(f"validation slice of {len(tokens)} tokens: nothing to score")
    out = []
    if n_full:
        starts = np.arange(n_full) * block_size
        out.append(np.stack([tokens[s:s + block_size + 1] for s in starts]))
    if rest:
        out.append(tokens[n_full * block_size:][None, :])
    return out


@torch.no_grad()
def val_metrics(model, tokens, cfg, bytes_per_token: float, device) -> dict:
    """Mean next-token cross-entropy over every token of the slice after the first, and bits per byte."""
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    eval_batch = max(cfg.train.batch_size, 32)  # forward only: larger batches are cheaper per token
    for windows in val_windows(tokens, cfg.model.block_size):
        for i in range(0, len(windows), eval_batch):
            chunk = torch.from_numpy(windows[i:i + eval_batch]).to(device)   # (B, T + 1)
            with autocast(device, cfg):
                logits = model(chunk[:, :-1])                                  # (B, T, V)
            loss = F.cross_entropy(logits.flatten(0, 1).float(), chunk[:, 1:].flatten(), reduction="sum")
            total += loss.item()
            count += chunk[:, 1:].numel()
    model.train(was_training)
    val_loss = total / count
    return {"val_loss": val_loss, "val_bpb": val_loss / math.log(2) / bytes_per_token}
