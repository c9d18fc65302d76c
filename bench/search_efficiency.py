"""Search efficiency: does ASHA + deep confirmation pick the winner that full training picks,
with at most 1/3 of its compute? Tiny Shakespeare (baselines/shakespeare_char.yaml), 26 variants.

    FOUNDRY_DATA=../shared/data python bench/search_efficiency.py [--steps 400] [--jobs 2]

The "full budget" is --steps optimizer steps of the baseline (tokens = steps x 768); warmup is
scaled with it (100 of 2000 steps -> the same 5%) and validation uses the first 38,400 bytes. Reference:
every variant plus the baseline trained once to the full budget. Search: ASHA (eta 3, grace =
full / 27, four rungs) then deep confirmation of the top 2 over 2 seeds. Compute is the
training FLOPs in the runs' summaries (6N + attention per token, foundry/model/gpt.py). Both
searches live in --out and resume when the script is run again.
"""
import argparse
import os
import sys
import time

from foundry.catalog import load
from foundry.config import save
from foundry.runner.pool import plan_workers
from foundry.search import sweep

VARIANTS = ["lr:x0.5", "lr:x2", "lr:x0.7", "lr:x1.4", "depth:minus1", "depth:plus1", "width:x0.75", "width:x1.5",
            "activation:swiglu", "activation:relu2", "norm:rmsnorm", "position:rope", "qk_norm:on", "warmup:off",
            "weight_decay:off", "batch_size:x2", "attention:gqa_1kv", "attention:gqa_2kv", "heads:x2", "mlp_ratio:2",
            "tie_embeddings:off", "dropout:0.1", "betas:0.9_0.95", "grad_clip:off", "loss:label_smoothing", "warmup:x2"]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=400, help="full budget in optimizer steps of the baseline")
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--out", default="experiments/bench/search_efficiency")
    args = p.parse_args()
    if not os.environ.get("FOUNDRY_DATA"):
        sys.exit("set FOUNDRY_DATA to the shared data folder")
    steps = args.steps
    base = load("baselines/shakespeare_char.yaml", ["budget.steps=0", f"budget.tokens={steps * 768}",
                                                    f"train.warmup_steps={max(1, round(steps * 0.05))}",
                                                    "eval.bytes=38400", "eval.interval=100000"])
    os.makedirs(args.out, exist_ok=True)
    base_path = os.path.join(args.out, "baseline.yaml")
    save(base, base_path)
    workers = plan_workers(args.jobs, gpus=[])
    full_tokens = steps * 768

    t0 = time.time()
    full = sweep.run_sweep(base_path, VARIANTS, os.path.join(args.out, "full"), workers, asha=None, seeds=1)
    full_wall = time.time() - t0
    t0 = time.time()
    asha = sweep.run_sweep(base_path, VARIANTS, os.path.join(args.out, "asha"), workers,
                           sweep.AshaOptions(grace=full_tokens // 27, eta=3, top_k=2, confirm_baseline=False),
                           seeds=2)
    asha_wall = time.time() - t0

    print("\n== full training of every variant (1 seed, full budget) ==")
    print(sweep.format_report(full))
    print("\n== ASHA + deep confirmation ==")
    print(sweep.format_report(asha))
    ratio = asha["total_flops"] / full["total_flops"]
    print(f"\nfull budget: {steps} steps = {full_tokens:,} tokens per trial; {len(VARIANTS)} variants + baseline")
    print(f"full training: winner {full['winner']}, {full['total_flops']:.4g} FLOPs, {full['total_tokens']:,} tokens, "
          f"{full_wall / 60:.1f} min wall")
    print(f"ASHA + confirm: winner {asha['winner']}, {asha['total_flops']:.4g} FLOPs, {asha['total_tokens']:,} tokens, "
          f"{asha_wall / 60:.1f} min wall")
    print(f"compute ratio: {ratio:.3f} (target <= 0.333); same winner: {full['winner'] == asha['winner']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
