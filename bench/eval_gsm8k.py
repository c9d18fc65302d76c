"""Bench: GSM8K generation throughput (batched greedy decoding with a KV cache); prints figures.

    FOUNDRY_DATA=../shared/data python bench/eval_gsm8k.py --limit 256          # tiny.yaml-sized, CPU
    python bench/eval_gsm8k.py --preset gpt2-small --device cuda                 # GPT-2-small-sized
    python bench/eval_gsm8k.py --checkpoint runs/x | --hf /models/gpt2

Random weights unless --checkpoint/--hf (accuracy ~ 0; the figure is speed). Random models rarely
emit a stop string, so nearly every question generates the full --max-new-tokens (capped at half
the context): a worst case for throughput.
"""
import argparse
import os
import time

import torch

from foundry import config
from foundry.benchmarks.common import EvalOptions
from foundry.benchmarks.gsm8k import GSM8K
from foundry.benchmarks.targets import FoundryLM, load_target, resolve_device
from foundry.data import ByteTokenizer
from foundry.model import GPT

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PRESETS = {"tiny": {}, "gpt2-small": {"n_layer": 12, "n_head": 12, "n_embd": 768, "block_size": 1024}}


def build_lm(args):
    if args.checkpoint or args.hf:
        return load_target(args.checkpoint or args.hf, device=args.device, kind="foundry" if args.checkpoint else "hf")
    cfg = config.load(os.path.join(REPO, "baselines", "tiny.yaml"),
                      [f"model.{k}={v}" for k, v in PRESETS[args.preset].items()] + ["model.vocab_size=256"])
    torch.manual_seed(0)
    return FoundryLM(GPT(cfg.model), ByteTokenizer(), cfg, device=args.device)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint")
    p.add_argument("--hf")
    p.add_argument("--preset", default="tiny", choices=list(PRESETS))
    p.add_argument("--device", default="auto")
    p.add_argument("--limit", type=int, default=256, help="questions (0 = all 1,319)")
    p.add_argument("--shots", type=int, default=5)
    p.add_argument("--max-new-tokens", type=int, default=256)
    p.add_argument("--batch-tokens", type=int, default=8192)
    p.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0 = torch's default)")
    p.add_argument("--data", default=None)
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    args.device = resolve_device(args.device)
    lm = build_lm(args)
    lm.batch_tokens = args.batch_tokens
    task = GSM8K(EvalOptions(data_dir=args.data, limit=args.limit, shots=args.shots,
                             max_new_tokens=args.max_new_tokens))
    start = time.perf_counter()
    result = task.evaluate(lm)
    seconds = time.perf_counter() - start
    generated = sum(lm.num_tokens(it["completion"]) for it in result["items"])
    params = sum(t.numel() for t in lm.model.parameters())
    print(f"model: {type(lm).__name__} {args.checkpoint or args.hf or args.preset}, {params / 1e6:.2f}M params, "
          f"context {lm.block_size}, device {args.device}, torch threads {torch.get_num_threads()}, "
          f"cpus {os.cpu_count()}, load average {os.getloadavg()[0]:.1f}")
    print(f"questions: {result['n']}")
    print(f"mean_shots_used: {sum(it['shots'] for it in result['items']) / result['n']:.2f}")
    print(f"seconds: {seconds:.1f}")
    print(f"questions_per_s: {result['n'] / seconds:.2f}")
    print(f"generated_tokens: {generated}")
    print(f"generated_tokens_per_s: {generated / seconds:.0f}")
    print(f"tokens_forwarded_per_s: {lm.tokens_forwarded / seconds:.0f}")
    print(f"exact_match: {result['score']:.4f}")


if __name__ == "__main__":
    main()
