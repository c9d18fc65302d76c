"""A stand-in for `python -m foundry.training.rung` in search tests: no torch, instant.

val_bpb = 2 + |log2(lr / 0.006)| + 500 / tokens trained so far + 0.01 |n_layer - 4| (best at lr
0.006 and 4 layers, better with more tokens, a little seed noise); lr above 0.02 diverges (exit 3). Keeps its tokens in
checkpoint/tokens so --resume continues, and logs its argv to calls.log in the run folder.
"""
import argparse
import json
import math
import os
import sys

import yaml

from foundry.config import apply_overrides


def main(argv):
    p = argparse.ArgumentParser()
    p.add_argument("config")
    p.add_argument("overrides", nargs="*")
    p.add_argument("--out", required=True)
    p.add_argument("--resume", action="store_true")
    p.add_argument("--stop-at-tokens", type=int, help="default: the budget in tokens")
    args = p.parse_intermixed_args(argv)
    with open(args.config) as f:
        cfg = apply_overrides(yaml.safe_load(f), args.overrides)
    os.makedirs(os.path.join(args.out, "checkpoint"), exist_ok=True)
    with open(os.path.join(args.out, "calls.log"), "a") as f:
        f.write(" ".join(argv) + "\n")
    tokens_file = os.path.join(args.out, "checkpoint", "tokens")
    if os.path.exists(tokens_file) and not args.resume:
        print("already holds a run", file=sys.stderr)
        return 2
    start = int(open(tokens_file).read()) if args.resume and os.path.exists(tokens_file) else 0
    budget = cfg.get("budget", {}).get("tokens") or 2700
    tokens = max(start, args.stop_at_tokens or budget)
    with open(tokens_file, "w") as f:
        f.write(str(tokens))
    lr, seed = float(cfg["train"]["lr"]), int(cfg["train"].get("seed", 0))
    depth = int(cfg["model"].get("n_layer", 2))
    status = "diverged" if lr > 0.02 else "done"
    bpb = 2 + abs(math.log2(lr / 0.006)) + 500 / tokens + 0.001 * (seed % 7) + 0.01 * abs(depth - 4)
    with open(os.path.join(args.out, "config.yaml"), "w") as f:
        yaml.safe_dump({"model": {"vocab_size": 256}}, f)
    summary = {"status": status, "val_bpb": bpb, "val_loss": bpb * math.log(2), "train_tokens": tokens,
               "train_flops": 1000.0 * tokens, "tokens_per_s": 1e4, "steps": tokens // 100}
    with open(os.path.join(args.out, "summary.json"), "w") as f:
        json.dump(summary, f)
    return 0 if status == "done" else 3


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
