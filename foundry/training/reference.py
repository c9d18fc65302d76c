"""A reference model that scores training documents, for `data.curriculum.by: perplexity`.

    reference = Reference("runs/small")           # a run folder or checkpoint
    reference.identity                            # hash of its weights and config: part of the token cache key
    reference.score(documents)                    # bits per byte of each document (lower = easier)

The model is loaded only when documents are scored, which happens on a token-cache miss. Each
document is scored on its first `max_windows` windows of the reference's block_size + 1 tokens
(its own tokenizer, so any Foundry checkpoint serves), as bits per UTF-8 byte of the scored text,
which compares across documents and tokenizers.
"""
from __future__ import annotations

import hashlib
import math
import os

import numpy as np
import torch
import torch.nn.functional as F

from foundry.errors import UserError
from foundry.weights.checkpoint import checkpoint_dir, load_model


class Reference:
    def __init__(self, path: str, max_windows: int = 4, batch_size: int = 32, device: str = "cpu"):
        self.path, self.max_windows, self.batch_size, self.device = path, max_windows, batch_size, device
        folder = checkpoint_dir(os.path.expandvars(path))
        digest = hashlib.sha256()
        for name in ("config.yaml", "model.safetensors", "ema.safetensors"):
            file = os.path.join(folder, name)
            if os.path.exists(file):
                with open(file, "rb") as f:
                    digest.update(name.encode() + f.read())
            elif name != "ema.safetensors":
                raise UserError(f"data.curriculum.reference: {path} is not a Foundry checkpoint (no {name})")
        self.identity = f"{digest.hexdigest()[:16]}:{max_windows}"

    @torch.no_grad()
    def score(self, documents: list[str]) -> list[float]:
        model, tokenizer, cfg = load_model(self.path, self.device)
        width = cfg.model.block_size + 1
        rows, owners, nbytes = [], [], []
        for i, doc in enumerate(documents):
            ids = np.asarray(tokenizer.encode(doc)[: self.max_windows * width], dtype=np.int64)
            nbytes.append(max(1, len(tokenizer.decode(ids.tolist()).encode("utf-8"))))
            for start in range(0, max(1, len(ids) - 1), width):
                window = ids[start:start + width]
                if len(window) >= 2:
                    rows.append(np.pad(window, (0, width - len(window)), constant_values=-1))
                    owners.append(i)
        nll = np.zeros(len(documents))
        for first in range(0, len(rows), self.batch_size):
            batch = torch.from_numpy(np.stack(rows[first:first + self.batch_size])).to(self.device)  # (B, T + 1)
            logits = model(batch[:, :-1].clamp(min=0))                                              # (B, T, V)
            loss = F.cross_entropy(logits.flatten(0, 1).float(), batch[:, 1:].flatten(), ignore_index=-1,
                                   reduction="none").view(batch.shape[0], -1).sum(1)
            np.add.at(nll, owners[first:first + self.batch_size], loss.cpu().numpy())
        return [n / math.log(2) / b for n, b in zip(nll, nbytes)]
