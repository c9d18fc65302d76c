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
import time

import torch
from eval_target import add_target_args, build_lm, describe  # bench/eval_target.py

from foundry.benchmarks.common import EvalOptions
from foundry.benchmarks.mmlu import MMLU


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_target_args(p)
    p.add_argument("--limit", type=int, default=0, help="questions (0 = the whole test split)")
    p.add_argument("--shots", type=int, default=5)
    p.add_argument("--split", default="test", choices=["test", "val"])
    args = p.parse_args()
    lm = build_lm(args)
    task = MMLU(EvalOptions(data_dir=args.data, limit=args.limit, shots=args.shots))
    task.split = args.split
    if args.device.startswith("cuda"):
        torch.cuda.synchronize()
    start = time.perf_counter()
    result = task.evaluate(lm)
    if args.device.startswith("cuda"):
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    print(describe(lm, args))
    print(f"questions: {result['n']}")
    print(f"subjects: {result['n_subjects']}")
    print(f"shots_requested: {args.shots}")
    print(f"mean_shots_used: {result['mean_shots']:.3f}")
    print(f"prompts_cut_from_left: {result['truncated']:.3f}")
    print(f"seconds: {seconds:.1f}")
    print(f"questions_per_s: {result['n'] / seconds:.1f}")
    print(f"tokens_forwarded: {lm.tokens_forwarded}")
    print(f"tokens_per_s: {lm.tokens_forwarded / seconds:.0f}")
    print(f"acc (micro, the headline): {result['score']:.4f}")
    print(f"acc_macro: {result['acc_macro']:.4f}")


if __name__ == "__main__":
    main()
