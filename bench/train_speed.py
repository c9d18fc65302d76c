"""Training speed and quality of baselines/shakespeare_char.yaml (nanoGPT's baby CPU config).

    FOUNDRY_DATA=../shared/data python bench/train_speed.py                 # 3 seeds x 2000 steps
    FOUNDRY_DATA=../shared/data python bench/train_speed.py --steps 200 --seeds 1   # quick look
    python bench/train_speed.py --gpt2-small --steps 50       # on a GPU: GPT-2-small in bf16

Prints, per seed, val loss at the final step, training tokens/s (eval time excluded) and MFU
against the measured fp32 matmul peak of this machine (bf16 data-sheet peak on a GPU).
Targets from the foundation issue: val loss <= 1.89 at step 2000 (mean of 3 seeds) at
>= 20,000 tokens/s on 2 CPU cores; >= 40% MFU for GPT-2-small on an H100.
bench/reference_nanogpt.py trains nanoGPT's own baby model on the same split: read these figures
against it on the same machine.
"""
import argparse
import os
import statistics
import sys
import tempfile

import torch

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from foundry import catalog, hardware  # noqa: E402
from foundry.training.loop import train  # noqa: E402

GPT2_SMALL = ["model.n_layer=12", "model.n_head=12", "model.n_embd=768", "model.block_size=1024",
              "model.vocab_size=50304", "model.position=learned", "model.norm=layernorm", "train.dtype=bf16",
              "train.batch_size=16", "data.source=builtin", "data.tokenizer=byte", "eval.interval=100000",
              "eval.bytes=16384"]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default)")
    p.add_argument("--gpt2-small", action="store_true", help="GPT-2-small-sized model in bf16 (a GPU run)")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    overrides = [f"budget.steps={args.steps}"] + (GPT2_SMALL if args.gpt2_small else [])
    device = hardware.pick_device("auto")
    print(f"device: {hardware.describe(device)}; peak {hardware.peak_flops(device) / 1e9:,.1f} GFLOP/s "
          f"({'bf16 data sheet' if device.type == 'cuda' else 'measured fp32 matmul'})")
    rows = []
    for seed in range(args.seeds):
        cfg = catalog.load(os.path.join(REPO, "baselines", "shakespeare_char.yaml"),
                          overrides + [f"train.seed={1337 + seed}"])
        with tempfile.TemporaryDirectory() as out, open(os.devnull, "w") as quiet:
            summary = _quiet_train(cfg, out, quiet)
        rows.append(summary)
        print(f"seed {1337 + seed}: val_loss {summary['val_loss']:.4f} at step {summary['steps']}, "
              f"{summary['tokens_per_s']:,.0f} tokens/s "
              f"({1000 * cfg.tokens_per_step / summary['tokens_per_s']:.1f} ms/step), mfu {summary['mfu']:.1%}")
    loss = statistics.mean(r["val_loss"] for r in rows)
    speed = statistics.mean(r["tokens_per_s"] for r in rows)
    mfu = statistics.mean(r["mfu"] for r in rows)
    print(f"mean over {len(rows)} seeds: val_loss {loss:.4f}, tokens/s {speed:,.0f}, mfu {mfu:.1%}")
    return 0


def _quiet_train(cfg, out, stream):
    """Train with the run's progress lines silenced; only the figures above are printed."""
    old, sys.stdout = sys.stdout, stream
    try:
        return train(cfg, out)
    finally:
        sys.stdout = old


if __name__ == "__main__":
    sys.exit(main())
