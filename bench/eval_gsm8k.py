"""Bench: GSM8K generation throughput (batched greedy decoding with a KV cache); prints figures.

    FOUNDRY_DATA=../shared/data python bench/eval_gsm8k.py --limit 256          # tiny.yaml-sized, CPU
    python bench/eval_gsm8k.py --preset gpt2-small --device cuda                 # GPT-2-small-sized
    python bench/eval_gsm8k.py --checkpoint runs/x | --hf /models/gpt2

Random weights unless --checkpoint/--hf (accuracy ~ 0; the figure is speed). Random models rarely
emit a stop string, so nearly every question generates the full --max-new-tokens (capped at half
the context): a worst case for throughput.
"""
import argparse
import time

from eval_target import add_target_args, build_lm, describe  # bench/eval_target.py

from foundry.benchmarks.common import EvalOptions
from foundry.benchmarks.gsm8k import GSM8K


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_target_args(p)
    p.add_argument("--limit", type=int, default=256, help="questions (0 = all 1,319)")
    p.add_argument("--shots", type=int, default=5)
    p.add_argument("--max-new-tokens", type=int, default=256)
    args = p.parse_args()
    lm = build_lm(args)
    task = GSM8K(EvalOptions(data_dir=args.data, limit=args.limit, shots=args.shots,
                             max_new_tokens=args.max_new_tokens))
    start = time.perf_counter()
    result = task.evaluate(lm)
    seconds = time.perf_counter() - start
    generated = sum(lm.num_tokens(it["completion"]) for it in result["items"])
    print(describe(lm, args))
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
