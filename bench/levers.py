"""The trainer's speed levers, one at a time: ms per training step of a baseline with each lever
flipped from Foundry's default, interleaved in one process, as a ratio to the default.

    python bench/levers.py                                   # baselines/shakespeare_char.yaml, 1 thread
    python bench/levers.py --threads 2 --override model.n_embd=512

Rows (each the same model, optimizer and batch; only the named thing differs):
  default (fp32)           gelu_exact, q and [k; v] as two projections, fused AdamW, fp32
  gelu (tanh)              GPT-2's tanh GELU instead of the exact erf one
  fused qkv                one (C -> 3C) projection instead of q and [k; v] (weights concatenated
                           per step, so checkpoints keep their names)
  foreach AdamW            torch's foreach AdamW instead of the fused kernel
  bf16                     CPU bf16 autocast with attention kept in fp32 (foundry's rule)
  bf16, attention bf16     CPU bf16 autocast with attention in bf16 too
  4 micro-steps            the batch as 4 accumulated micro-steps (the reference of the next row)
  4 micro-steps, .item()   the same with a host sync (loss.item()) after each micro-step, which
                           Foundry's trainer avoids (one .tolist() per optimizer step)
  torch.compile            the model compiled (default mode); its compilation falls in the warm-up
                           steps, which are not timed (nor in the trainer's tokens/s)
foundry/model/modules/masks.py's `sdpa` runs attention in fp32 under CPU bf16 autocast because the
CPU flash-attention kernel's bf16 backward is far slower than its fp32 one; the last row shows
what that rule saves. Whether train.dtype `auto` may pick bf16 at all is foundry.hardware.fast_bf16
(AMX or AVX512-BF16 in /proc/cpuinfo); this prints what it found. Every row runs with glibc's malloc
keeping freed memory, as the trainer does (train.keep_freed_memory); that setting is process-wide,
so it is measured end to end, as are torch.compile and threads: bench/train_vs_nanogpt.py
--row "train.dtype=fp32 train.keep_freed_memory=false", --override train.compile=true, --threads N.
The rows interleave in every round, so a change of the machine's load falls on all of them.
"""
import argparse
import os
import sys
import time

import torch
import torch.nn.functional as F

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from foundry import catalog, hardware  # noqa: E402
from foundry.model.gpt import GPT  # noqa: E402
from foundry.model.modules import gqa, masks  # noqa: E402
from foundry.training.optim import make_optimizer  # noqa: E402


class FusedQKV(gqa.MultiHeadAttention):
    """The fused-projection lever: q, k, v from one matmul over the concatenated weights."""

    def project(self, x):
        B, T, C = x.shape
        weight = torch.cat([self.q_proj.weight, self.kv_proj.weight])           # (3C, C)
        bias = None if self.q_proj.bias is None else torch.cat([self.q_proj.bias, self.kv_proj.bias])
        qkv = F.linear(x, weight, bias).view(B, T, 3, self.n_head, self.head_dim)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)                                    # (B, H, T, D) each
        return q, k, v


def check_fused_qkv(cfg) -> None:
    """The fused form computes the same function (else its speed would mean nothing)."""
    torch.manual_seed(0)
    model = GPT(cfg.model).eval()
    x = torch.randint(0, cfg.model.vocab_size, (2, cfg.model.block_size))
    with torch.no_grad():
        two = model(x)
        for block in model.blocks:
            block.attn.__class__ = FusedQKV
        torch.testing.assert_close(model(x), two)


def stepper(cfg, bf16=False, attention_in_bf16=False, fused_qkv=False, foreach=False, micro=1, sync=False,
            compiled=False):
    torch.manual_seed(0)
    model, vocab = GPT(cfg.model), cfg.model.vocab_size
    if fused_qkv:
        for block in model.blocks:
            block.attn.__class__ = FusedQKV
    optimizer = make_optimizer(model, cfg, "cpu")
    if foreach:
        optimizer = torch.optim.AdamW(optimizer.param_groups, foreach=True)
    x = torch.randint(0, vocab, (cfg.train.batch_size, cfg.model.block_size))
    y = torch.roll(x, -1, dims=1)
    forward = torch.compile(model) if compiled else model

    def step():
        gqa.sdpa = F.scaled_dot_product_attention if attention_in_bf16 else masks.sdpa
        for xs, ys in zip(x.chunk(micro), y.chunk(micro)):          # micro-steps of batch / micro rows
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                loss = F.cross_entropy(forward(xs).flatten(0, 1).float(), ys.flatten()) / micro
            loss.backward()
            if sync:
                loss.item()                                          # a host sync per micro-step
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    return step


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", default=os.path.join(REPO, "baselines", "shakespeare_char.yaml"))
    p.add_argument("--override", action="append", default=[])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--rounds", type=int, default=6)
    p.add_argument("--steps", type=int, default=15, help="steps per timed round")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    hardware.keep_freed_memory()   # as the trainer does on a CPU (train.keep_freed_memory)
    base = ["model.vocab_size=65", "data.source=builtin", "model.attention=mha", "train.dtype=fp32", *args.override]
    cfg = catalog.load(args.config, base)
    tanh = catalog.load(args.config, [*base, "model.activation=gelu"])
    variants = {"default (fp32)": stepper(cfg), "gelu (tanh)": stepper(tanh),
                "fused qkv": stepper(cfg, fused_qkv=True), "foreach AdamW": stepper(cfg, foreach=True),
                "bf16": stepper(cfg, bf16=True), "bf16, attention bf16": stepper(cfg, bf16=True, attention_in_bf16=True),
                "4 micro-steps": stepper(cfg, micro=4), "4 micro-steps, .item()": stepper(cfg, micro=4, sync=True),
                "torch.compile": stepper(cfg, compiled=True)}
    check_fused_qkv(cfg)
    for step in variants.values():
        for _ in range(5):
            step()
    times = {name: [] for name in variants}
    for _ in range(args.rounds):
        for name, step in variants.items():
            start = time.perf_counter()
            for _ in range(args.steps):
                step()
            times[name].append(1000 * (time.perf_counter() - start) / args.steps)
    print(f"CPU flags with native bf16: {sorted(set(hardware.CPU_BF16_FLAGS) & hardware.cpu_flags()) or 'none'}; "
          f"train.dtype auto -> {hardware.compute_dtype('cpu', 'auto')}; {args.threads} thread(s); "
          f"load average {os.getloadavg()[0]:.1f}")
    reference = min(times["default (fp32)"])
    for name, values in times.items():
        print(f"{name:22s} best {min(values):7.1f} ms/step  median {sorted(values)[len(values) // 2]:7.1f}  "
              f"speed vs default {reference / min(values):.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
