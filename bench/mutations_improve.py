"""How many mutation types improve baselines/shakespeare_char.yaml? One variant per type, 3 seeds each.

    FOUNDRY_DATA=../shared/data python bench/mutations_improve.py [--steps 2000] [--seeds 3] [--jobs 2]

Every variant and the baseline train with the same seeds (a sweep without ASHA, so the runs of
all configs are interleaved under the same machine load, seed-major) and the same token budget,
the baseline's 2000 steps x 768 tokens: variants that change tokens per step (context, batch size)
take proportionally fewer steps. "Improves" is counted two ways: a lower
mean val_bpb, and a significant one (the 95% interval of the difference excludes 0, i.e. the
improvement exceeds 1.96 standard errors of the difference of means). --steps below the baseline's 2000 runs a reduced budget (warmup scaled
to the same 5%, validation on the first 38,400 bytes (the 50 batches x 768 tokens it was)): say so when quoting the figure. Resumable via --out.
Left out, because they do not apply to this baseline (foundry.mutate refuses them): format
(needs a JSONL chat source), lora_rank (LoRA fine-tunes a checkpoint; the baseline trains from
scratch), lora_alpha / lora_dropout (need lora_rank > 0), curriculum (the source is one document).
So the figure covers the 22 types that apply here, one representative variant each.
"""
import argparse
import os
import sys

from foundry.catalog import load
from foundry.config import save
from foundry.runner.pool import plan_workers
from foundry.search import sweep, trials
from foundry.search.ledger import SearchLedger

ONE_PER_TYPE = ["attention:gqa_1kv", "ffn:moe", "depth:plus1", "width:x1.5", "heads:x2", "mlp_ratio:6", "context:x2",
                "norm:rmsnorm", "qk_norm:on", "activation:swiglu", "position:rope", "tie_embeddings:off",
                "dropout:0.1", "loss:label_smoothing", "lr:x2", "batch_size:x2", "warmup:x0.5", "grad_clip:off",
                "weight_decay:off", "betas:0.9_0.95", "ema:0.99", "tokenizer:byte"]


def print_table(report: dict, steps: int, seeds: int) -> None:
    rows = sorted(report["ranking"], key=lambda r: r.get("delta") or 0.0)
    for r in rows:
        r["verdict"] = "baseline" if r["label"] == "baseline" else (
            "better*" if r.get("ci95", [0, 0])[1] < 0 else "better" if r["delta"] < 0 else
            "worse*" if r.get("ci95", [0, 0])[0] > 0 else "worse")
        r["ci"] = "-" if "ci95" not in r else f"[{r['ci95'][0]:+.4f}, {r['ci95'][1]:+.4f}]"
    print(trials.table(rows, [("label", "mutation", ""), ("metric", "val_bpb", ".4f"), ("stdev", "± sd", ".4f"),
                              ("n", "seeds", ""), ("delta", "Δ vs base", "+.4f"), ("ci", "95% CI of Δ", ""), ("verdict", "", ""),
                              ("tokens_per_s", "tok/s", ".0f"), ("train_flops", "FLOPs", ".3g"),
                              ("qpc", "QPC", ".3g")]))
    variants = [r for r in rows if r["label"] != "baseline"]
    lower = sum(r["delta"] < 0 for r in variants)
    significant = sum(r["verdict"] == "better*" for r in variants)
    print(f"\n{steps} steps x {seeds} seeds; {len(variants)} mutation types: {lower} lower mean val_bpb, "
          f"{significant} significantly better (* = the 95% CI of Δ excludes 0), "
          f"{sum(r['verdict'] == 'worse*' for r in variants)} significantly worse")
    if any(r["n"] < seeds for r in rows):
        print(f"INCOMPLETE: {sum(r['n'] < seeds for r in rows)} configs have fewer than {seeds} seeds so far "
              "(column 'seeds'); no interval without 2 seeds on both sides")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=2000, help="budget in optimizer steps (baseline: 2000)")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--out", default="experiments/bench/mutations_improve")
    p.add_argument("--report", action="store_true", help="print the table from what --out holds so far; train nothing")
    args = p.parse_args()
    if not os.environ.get("FOUNDRY_DATA"):
        sys.exit("set FOUNDRY_DATA to the shared data folder")
    sweep_dir = os.path.join(args.out, "sweep")
    if args.report:  # what the folder holds so far, writing nothing (seeds still missing show as a smaller n)
        ledger_path = os.path.join(sweep_dir, sweep.LEDGER)
        if not os.path.exists(ledger_path):
            sys.exit(f"{sweep_dir}: no search ledger yet")
        report = sweep.summarize(SearchLedger(ledger_path).load(), None, sweep_dir)
    else:
        overrides = [] if args.steps == 2000 else [
            f"budget.steps={args.steps}", f"train.warmup_steps={max(1, round(args.steps * 0.05))}", "eval.bytes=38400"]
        base = load("baselines/shakespeare_char.yaml", overrides + [f"eval.interval={args.steps}"])
        os.makedirs(args.out, exist_ok=True)
        base_path = os.path.join(args.out, "baseline.yaml")
        save(base, base_path)
        report = sweep.run_sweep(base_path, ONE_PER_TYPE, sweep_dir, plan_workers(args.jobs, gpus=[]),
                                 asha=None, seeds=args.seeds)
    print_table(report, args.steps, args.seeds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
