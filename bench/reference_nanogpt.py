"""A yardstick for bench/train_speed.py: nanoGPT's "baby" model and training loop, written plainly.

    FOUNDRY_DATA=../shared/data python bench/reference_nanogpt.py [--seeds 3] [--steps 2000] [--threads 2]

The same architecture (4 layers, 4 heads, 128 wide, block 64, no biases, tied embeddings, GELU,
LayerNorm, SDPA), initialisation, AdamW groups, learning-rate schedule and batch sampling as
nanoGPT's train.py with the baby CPU settings, trained on Foundry's split of tiny Shakespeare and
scored two ways: Foundry's val_loss (the whole validation split, as bench/train_speed.py reports)
and nanoGPT's estimate (the mean of 20 random validation batches; ten draws show its spread).
Nothing here is a Foundry component: it is the reference that Foundry's own figures are read against.
"""
import argparse
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from foundry.catalog import load
from foundry.data.dataset import get_batch, load_dataset
from foundry.evaluation import val_metrics

WIDTH, HEADS, LAYERS, BLOCK, BATCH = 128, 4, 4, 64, 12


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.ln_1, self.ln_2 = nn.LayerNorm(WIDTH, bias=False), nn.LayerNorm(WIDTH, bias=False)
        self.c_attn, self.attn_proj = nn.Linear(WIDTH, 3 * WIDTH, bias=False), nn.Linear(WIDTH, WIDTH, bias=False)
        self.c_fc, self.mlp_proj = nn.Linear(WIDTH, 4 * WIDTH, bias=False), nn.Linear(4 * WIDTH, WIDTH, bias=False)

    def forward(self, x):                                          # (B, T, C)
        b, t, _ = x.shape
        q, k, v = (z.view(b, t, HEADS, -1).transpose(1, 2) for z in self.c_attn(self.ln_1(x)).split(WIDTH, 2))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)  # (B, H, T, C/H)
        x = x + self.attn_proj(y.transpose(1, 2).reshape(b, t, WIDTH))
        return x + self.mlp_proj(F.gelu(self.c_fc(self.ln_2(x))))


class ReferenceGPT(nn.Module):
    def __init__(self, vocab_size):
        super().__init__()
        self.wte, self.wpe = nn.Embedding(vocab_size, WIDTH), nn.Embedding(BLOCK, WIDTH)
        self.blocks = nn.ModuleList(Block() for _ in range(LAYERS))
        self.ln_f, self.head = nn.LayerNorm(WIDTH, bias=False), nn.Linear(WIDTH, vocab_size, bias=False)
        self.wte.weight = self.head.weight
        for name, p in self.named_parameters():   # N(0, 0.02); residual projections scaled by 1/sqrt(2L)
            if p.dim() == 2:
                nn.init.normal_(p, 0.0, 0.02 / math.sqrt(2 * LAYERS) if name.endswith("_proj.weight") else 0.02)

    def forward(self, idx):                                        # (B, T) -> logits (B, T, V)
        x = self.wte(idx) + self.wpe(torch.arange(idx.shape[1]))
        for block in self.blocks:
            x = block(x)
        return self.head(self.ln_f(x))


def lr_at(step, steps, lr=1e-3, min_lr=1e-4, warmup=100):
    if step < warmup:
        return lr * (step + 1) / (warmup + 1)
    return min_lr + 0.5 * (1 + math.cos(math.pi * (step - warmup) / (steps - warmup))) * (lr - min_lr)


def run(seed, steps, cfg, data):
    torch.manual_seed(seed)
    model = ReferenceGPT(data.tokenizer.vocab_size)
    params = list(model.parameters())
    optimizer = torch.optim.AdamW([{"params": [p for p in params if p.dim() >= 2], "weight_decay": 0.1},
                                   {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}],
                                  lr=1e-3, betas=(0.9, 0.99), fused=True)
    rng, start = np.random.default_rng(seed), time.perf_counter()
    for step in range(steps):
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step, steps)
        x, y = get_batch(data.train, BATCH, BLOCK, rng)
        F.cross_entropy(model(x).flatten(0, 1), y.flatten()).backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    ms_per_step = (time.perf_counter() - start) / steps * 1000
    whole = val_metrics(model, data.val, cfg, data.val_bytes_per_token, "cpu")["val_loss"]
    model.eval()
    estimates = []  # nanoGPT's estimate_loss: the mean over 20 random validation batches; ten draws of it
    with torch.no_grad():
        for draw in range(10):
            rng = np.random.default_rng(draw)
            batches = [get_batch(data.val, BATCH, BLOCK, rng) for _ in range(20)]
            estimates.append(np.mean([F.cross_entropy(model(x).flatten(0, 1), y.flatten()).item() for x, y in batches]))
    return whole, estimates, ms_per_step


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    if not os.environ.get("FOUNDRY_DATA"):
        sys.exit("set FOUNDRY_DATA to the shared data folder")
    torch.set_num_threads(args.threads)
    cfg = load("baselines/shakespeare_char.yaml")
    data = load_dataset(cfg.data)
    results = []
    for seed in range(1337, 1337 + args.seeds):
        whole, estimates, ms = run(seed, args.steps, cfg, data)
        results.append((whole, ms))
        print(f"seed {seed}: val_loss {whole:.4f} (whole split); 20-batch estimates {min(estimates):.4f}.."
              f"{max(estimates):.4f} (sd {np.std(estimates):.4f}); {ms:.1f} ms/step = "
              f"{BATCH * BLOCK / ms * 1000:,.0f} tokens/s", flush=True)
    print(f"mean over {args.seeds} seeds: val_loss {np.mean([r[0] for r in results]):.4f}, "
          f"{np.mean([r[1] for r in results]):.1f} ms/step")
    return 0


if __name__ == "__main__":
    sys.exit(main())
