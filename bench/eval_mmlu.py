"""Bench: MMLU (5-shot, log-likelihood of the answer letter) throughput; prints figures.

    FOUNDRY_DATA=../shared/data python bench/eval_mmlu.py                    # full test split, tiny.yaml-sized
    python bench/eval_mmlu.py --checkpoint runs/x                            # a trained Foundry checkpoint
    python bench/eval_mmlu.py --preset gpt2-small --device cuda              # GPT-2-small-sized, on a GPU
    python bench/eval_mmlu.py --hf /models/gpt2 --device cuda

Without --checkpoint/--hf the model has random weights (accuracy ~ chance; the figure is speed): the
shape of baselines/tiny.yaml (byte tokenizer, 128-token context) or GPT-2 small (12 x 768, 1024
context, byte tokenizer). With a 128-byte context, 5-shot prompts cannot fit: shots are dropped
whole from the left and most questions are also cut from the left (both fractions are printed).
"""
import argparse
import os
import time

import torch

from foundry import config
from foundry.benchmarks.common import EvalOptions
from foundry.benchmarks.mmlu import MMLU
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
    p.add_argument("--checkpoint", help="a Foundry run dir or checkpoint folder")
    p.add_argument("--hf", help="a local Hugging Face causal-LM folder")
    p.add_argument("--preset", default="tiny", choices=list(PRESETS), help="random-weight model shape")
    p.add_argument("--device", default="auto")
    p.add_argument("--limit", type=int, default=0, help="questions (0 = the whole test split)")
    p.add_argument("--shots", type=int, default=5)
    p.add_argument("--split", default="test", choices=["test", "val"])
    p.add_argument("--batch-tokens", type=int, default=8192)
    p.add_argument("--data", default=None, help="data folder (default $FOUNDRY_DATA)")
    p.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0 = torch's default)")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    args.device = resolve_device(args.device)
    lm = build_lm(args)
    lm.batch_tokens = args.batch_tokens
    task = MMLU(EvalOptions(data_dir=args.data, limit=args.limit, shots=args.shots))
    task.split = args.split
    if args.device.startswith("cuda"):
        torch.cuda.synchronize()
    start = time.perf_counter()
    result = task.evaluate(lm)
    if args.device.startswith("cuda"):
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    params = sum(t.numel() for t in lm.model.parameters())
    print(f"model: {type(lm).__name__} {args.checkpoint or args.hf or args.preset}, {params / 1e6:.2f}M params, "
          f"context {lm.block_size} tokens, device {args.device}, torch threads {torch.get_num_threads()}, "
          f"cpus {os.cpu_count()}, load average {os.getloadavg()[0]:.1f}")
    print(f"questions: {result['n']}")
    print(f"subjects: {result['n_subjects']}")
    print(f"shots_requested: {args.shots}")
    print(f"mean_shots_used: {result['mean_shots']:.3f}")
    print(f"prompts_cut_from_left: {result['truncated']:.3f}")
    print(f"seconds: {seconds:.1f}")
    print(f"questions_per_s: {result['n'] / seconds:.1f}")
    print(f"tokens_forwarded: {lm.tokens_forwarded}")
    print(f"tokens_per_s: {lm.tokens_forwarded / seconds:.0f}")
    print(f"acc_macro: {result['score']:.4f}")
    print(f"acc_micro: {result['micro_acc']:.4f}")


if __name__ == "__main__":
    main()
