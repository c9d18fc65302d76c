"""bf16 on this CPU: one training step of a baseline in fp32, in bf16 autocast, and in bf16 with
attention left in bf16 too, interleaved in one process (ms per step and the ratio to fp32).

    python bench/cpu_bf16.py                                   # baselines/shakespeare_char.yaml, 1 thread
    python bench/cpu_bf16.py --threads 2 --override model.n_embd=512

foundry/model/modules/masks.py's `sdpa` runs attention in fp32 under CPU bf16 autocast because the
CPU flash-attention kernel's bf16 backward is far slower than its fp32 one; the third row shows
what that rule saves. Whether train.dtype `auto` may pick bf16 on this CPU at all is
foundry.hardware.fast_bf16 (AMX or AVX512-BF16 in /proc/cpuinfo); this prints what it found.
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
from foundry.model.modules import masks  # noqa: E402
from foundry.training.optim import make_optimizer  # noqa: E402


def stepper(cfg, bf16: bool, attention_in_bf16: bool):
    torch.manual_seed(0)
    model, vocab = GPT(cfg.model), cfg.model.vocab_size
    optimizer = make_optimizer(model, cfg, "cpu")
    x = torch.randint(0, vocab, (cfg.train.batch_size, cfg.model.block_size))
    y = torch.roll(x, -1, dims=1)
    from foundry.model.modules import gqa  # mha/gqa attention: its `sdpa` is swapped per variant

    def step():
        gqa.sdpa = F.scaled_dot_product_attention if attention_in_bf16 else masks.sdpa
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = F.cross_entropy(model(x).flatten(0, 1).float(), y.flatten())
        loss.backward()
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
    cfg = catalog.load(args.config, ["model.vocab_size=65", "data.source=builtin", *args.override])
    variants = {"fp32": stepper(cfg, False, False), "bf16 (attention fp32)": stepper(cfg, True, False),
                "bf16 (attention bf16)": stepper(cfg, True, True)}
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
    base = min(times["fp32"])
    for name, values in times.items():
        print(f"{name:24s} best {min(values):7.1f} ms/step  median {sorted(values)[len(values) // 2]:7.1f}  "
              f"speed vs fp32 {base / min(values):.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
