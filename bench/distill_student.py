"""Distillation: a 2-layer student distilled from the trained 6-layer teacher (bench/shakespeare6.py)
against the same student trained from scratch, at equal steps and tokens; and the wall time of
online (live teacher) against cached-teacher distillation (`foundry distill cache`).

    FOUNDRY_DATA=../shared/data OMP_NUM_THREADS=1 python bench/distill_student.py            # 3 seeds x 300 steps
    FOUNDRY_DATA=../shared/data python bench/distill_student.py --steps 100 --seeds 1     # a quick look

Students: baselines/shakespeare_char.yaml with model.n_layer=2 (the teacher's width, heads and
context), budget.steps=STEPS, train.seed in SEEDS; every student of a seed draws the same batches
and starts from the same weights. Distilled: train.distill {temperature 2, alpha 0.5, top_k 16, kl}
online and from one cache written for all seeds (a cache written before for these seeds and at
least as many steps is reused: a shorter run draws a prefix of the same stream). Runs live in WORK and are reused when finished.
Prints val_bpb per seed and the mean, train tokens/s and wall seconds. The live teacher trains
only --online-seeds (default 1: it gives the wall time; its val_bpb is the cached run's to ~1e-5,
the cache holding the log-probabilities in fp16).
"""
import argparse
import glob
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from shakespeare6 import BASELINE, REPO, quiet, trained, trained_teacher  # noqa: E402

from foundry import catalog  # noqa: E402
from foundry.distill.cache import write_cache  # noqa: E402
from foundry.io import read_json  # noqa: E402

DISTILL = ["train.distill.temperature=2.0", "train.distill.alpha=0.5", "train.distill.top_k=16", "train.distill.loss=kl"]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--seeds", default="1,2,3")
    p.add_argument("--online-seeds", default="1",
                   help="seeds that also train with the live teacher (its val_bpb matches the cached one's to "
                        "~1e-5: the cache holds the same top-k in fp16, tests/distill/test_cache.py); 'all' = every seed")
    p.add_argument("--teacher-steps", type=int, default=2000, help="the teacher's budget (2000 = its full one)")
    p.add_argument("--work", default=os.path.join(REPO, "experiments", "bench_distill_prune"))
    args = p.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    online_seeds = seeds if args.online_seeds == "all" else [int(s) for s in args.online_seeds.split(",")]
    teacher = trained_teacher(args.work, args.teacher_steps)
    student = ["model.n_layer=2", f"budget.steps={args.steps}"]
    cache = os.path.join(args.work, f"cache-k16-t{args.teacher_steps}-{args.steps}")
    for written in sorted(glob.glob(os.path.join(args.work, f"cache-k16-t{args.teacher_steps}-*"))):
        manifest = read_json(os.path.join(written, "manifest.json")) or {}
        if set(seeds) <= set(manifest.get("seeds", ())) and manifest.get("micro_batches", 0) >= args.steps:
            cache = written  # grad_accum is 1 here: micro-batches = steps
    if read_json(os.path.join(cache, "manifest.json")) is None:
        with quiet():
            write_cache(teacher, catalog.load(BASELINE, student), cache, top_k=16, seeds=seeds)
    manifest = read_json(os.path.join(cache, "manifest.json"))
    print(f"cache {cache}: {manifest['windows']:,} windows x 64 positions, top 16, "
          f"{manifest['bytes'] / 2**20:.1f} MiB, written once in {manifest['seconds']:.0f} s for seeds {manifest['seeds']}")
    kinds = {"scratch": [], "online": [f"train.distill.teacher={teacher}", *DISTILL],
             "cached": [f"train.distill.cache={cache}", *DISTILL]}
    results = {kind: [] for kind in kinds}
    for seed in seeds:
        for kind, extra in kinds.items():
            if kind == "online" and seed not in online_seeds:
                continue
            cfg = catalog.load(BASELINE, [*student, f"train.seed={seed}", *extra])
            start = time.time()
            summary = trained(cfg, os.path.join(args.work, f"student-{kind}-t{args.teacher_steps}-{args.steps}-s{seed}"))
            results[kind].append(summary)
            print(f"seed {seed} {kind:>7}: val_bpb {summary['val_bpb']:.4f}  val_loss {summary['val_loss']:.4f}  "
                  f"{summary['tokens_per_s']:,.0f} train tokens/s  wall {summary['wall_s']:.0f} s"
                  f"{'' if time.time() - start > 1 else ' (reused)'}", flush=True)
    print(f"\n2-layer student, {args.steps} steps x {cfg.tokens_per_step} tokens, {len(seeds)} seeds (mean ± sd):")
    for kind, rows in results.items():
        bpb = [r["val_bpb"] for r in rows]
        spread = statistics.stdev(bpb) if len(bpb) > 1 else 0.0
        print(f"  {kind:>7}: val_bpb {statistics.mean(bpb):.4f} ± {spread:.4f}   "
              f"wall {statistics.mean(r['wall_s'] for r in rows):.0f} s   "
              f"{statistics.mean(r['tokens_per_s'] for r in rows):,.0f} train tokens/s")
    pairs = list(zip(results["online"], [r for r, seed in zip(results["cached"], seeds) if seed in online_seeds]))
    online, cached = (statistics.mean(pair[i]["wall_s"] for pair in pairs) for i in (0, 1))
    gap = max(abs(o["val_bpb"] - c["val_bpb"]) for o, c in pairs)
    print(f"  cached / online wall time (seeds {online_seeds}): {cached / online:.2f} "
          f"(+ the cache, once: {manifest['seconds']:.0f} s); |online - cached| val_bpb: {gap:.1e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
