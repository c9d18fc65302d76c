"""Pruning the trained 6-layer shakespeare_char model (bench/shakespeare6.py, 2000 steps): val loss
and perplexity at 50% unstructured sparsity for magnitude, saliency and Wanda and at 2:4, before
and after a short fine-tune; structured pruning (heads, neurons, layers): size, tokens/s and loss.

    FOUNDRY_DATA=../shared/data OMP_NUM_THREADS=1 python bench/prune_quality.py          # 3 seeds, 40 fine-tune steps
    FOUNDRY_DATA=../shared/data python bench/prune_quality.py --seeds 1 --finetune-steps 20 --teacher-steps 20
    FOUNDRY_DATA=../shared/data OMP_NUM_THREADS=1 python bench/prune_quality.py --part sweep   # magnitude vs Wanda

--part sweep: magnitude and Wanda at 50-80% unstructured, each in its own comparison group and in
the other's (layer: each matrix, row: each output row), val loss before any fine-tune.

Each seed draws its own calibration sample (64 training sequences, foundry.prune.prune) and
fine-tunes with its own batches: train.init_from=PRUNED, budget.steps=N, lr 3e-4 -> 3e-5, 20
warmup steps; masks are re-applied after every step. "dense" fine-tunes the unpruned model the
same way. Val loss is on the first 38400 bytes of validation text (eval.bytes: the 600 windows of 64
characters that eval.batches=50 of 12 sequences covered before the byte slice), the same slice
for every row, the dense model's included; perplexity = exp(val loss).
tokens/s: forward passes of a 12 x 64 batch on one thread, the models interleaved, the median of 20
rounds after 3 warm-up ones.
For reference, the Wanda paper (LLaMA-2-7B, 50%): dense 5.12, magnitude 14.89, Wanda 6.42 perplexity.
"""
import argparse
import math
import os
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from shakespeare6 import BASELINE, REPO, quiet, trained, trained_teacher  # noqa: E402

import foundry  # noqa: E402
from foundry import catalog  # noqa: E402
from foundry.data import load_dataset  # noqa: E402
from foundry.evaluation import val_metrics, val_slice  # noqa: E402
from foundry.io import read_json, write_json  # noqa: E402
from foundry.prune import prune  # noqa: E402

UNSTRUCTURED = {"magnitude 50%": {"method": "magnitude", "sparsity": 0.5},
                "saliency 50%": {"method": "saliency", "sparsity": 0.5},
                "wanda 50%": {"method": "wanda", "sparsity": 0.5},
                "magnitude 2:4": {"method": "magnitude", "pattern": "2:4"},
                "wanda 2:4": {"method": "wanda", "pattern": "2:4"}}
STRUCTURED = {"heads 50%": {"structured": "heads", "sparsity": 0.5},
              "neurons 50%": {"structured": "neurons", "sparsity": 0.5},
              "layers 50%": {"structured": "layers", "sparsity": 0.5}}


EVAL_BYTES = 38400


def val_loss(run) -> float:
    """Val loss on the fixed slice, kept in RUN/bench_val.json so a second invocation reads it."""
    path = os.path.join(run, "bench_val.json")
    kept = read_json(path)
    if kept is None or kept.get("bytes") != EVAL_BYTES:
        model, _, cfg = foundry.load(run)
        data = load_dataset(cfg.data)
        tokens, per_token = val_slice(data.val, data.tokenizer.decode, EVAL_BYTES)
        loss = val_metrics(model, tokens, cfg, per_token, "cpu")["val_loss"]
        write_json(path, kept := {"val_loss": loss, "bytes": EVAL_BYTES})
    return kept["val_loss"]


@torch.no_grad()
def tokens_per_s(runs: dict) -> dict:
    """{label: forward tokens/s} of a 12 x 64 batch, the models timed in turn (interleaved, so a
    change in the machine's load falls on all of them alike): the median of 20 rounds after 3."""
    models = {label: foundry.load(run)[0] for label, run in runs.items()}
    x = torch.randint(0, next(iter(models.values())).cfg.vocab_size, (12, 64))
    times = {label: [] for label in models}
    for i in range(23):
        for label, model in models.items():
            start = time.perf_counter()
            model(x)
            if i >= 3:
                times[label].append(time.perf_counter() - start)
    return {label: x.numel() / statistics.median(t) for label, t in times.items()}


def sweep(dense: str, dense_loss: float, seeds: list, args) -> int:
    """Magnitude against Wanda over sparsities and comparison groups: perplexity, no fine-tune."""
    print(f"6-layer shakespeare_char ({args.teacher_steps} steps): dense ppl {math.exp(dense_loss):.3f}; "
          f"perplexity after pruning, mean over calibration seeds {seeds}")
    print(f"{'method':>10} {'scope':>6}" + "".join(f"{f'{s:.0%}':>9}" for s in SWEEP))
    for method in ("magnitude", "wanda"):
        for scope in ("layer", "row"):
            cells = []
            for sparsity in SWEEP:
                losses = []
                for seed in seeds[:1] if method == "magnitude" else seeds:   # magnitude needs no data
                    pruned = os.path.join(args.work, f"sweep-t{args.teacher_steps}-{method}-{scope}-{sparsity}-s{seed}")
                    if read_json(os.path.join(pruned, "prune.json")) is None:
                        with quiet():
                            prune(dense, pruned, method=method, sparsity=sparsity, scope=scope, calibration=64,
                                  seed=seed, evaluate=False)
                    losses.append(val_loss(pruned))
                cells.append(math.exp(statistics.mean(losses)))
            print(f"{method:>10} {scope:>6}" + "".join(f"{c:>9.3f}" for c in cells), flush=True)
    return 0


SWEEP = (0.5, 0.6, 0.7, 0.8)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", default="1,2,3")
    p.add_argument("--finetune-steps", type=int, default=40)
    p.add_argument("--part", choices=("all", "unstructured", "structured", "sweep"), default="all",
                   help="train only these rows (two processes can share the work); 'all' also prints the tables")
    p.add_argument("--teacher-steps", type=int, default=2000, help="the model's budget (2000 = its full one)")
    p.add_argument("--work", default=os.path.join(REPO, "experiments", "bench_distill_prune"))
    args = p.parse_args()
    torch.set_num_threads(1)
    seeds = [int(s) for s in args.seeds.split(",")]
    dense = trained_teacher(args.work, args.teacher_steps)
    dense_loss = val_loss(dense)
    if args.part == "sweep":
        return sweep(dense, dense_loss, seeds, args)
    finetune = [f"budget.steps={args.finetune_steps}", "train.lr=3e-4", "train.min_lr=3e-5", "train.warmup_steps=20",
                f"eval.interval={args.finetune_steps}", f"eval.bytes={EVAL_BYTES}"]

    def finetune_config(run, seed):
        cfg = catalog.load(BASELINE, [*finetune, f"train.init_from={run}", f"train.seed={seed}"])
        cfg.model = catalog.load(os.path.join(run, "config.yaml")).model  # its shape: 6 layers, or pruned
        return cfg
    rows = {"dense": []}
    for seed in seeds:
        cfg = finetune_config(dense, seed)
        after = trained(cfg, os.path.join(args.work, f"ft-dense-t{args.teacher_steps}-{args.finetune_steps}-s{seed}"))
        rows["dense"].append({"pruned": dense_loss, "tuned": after["val_loss"], "params": after["params"]})
    parts = {"all": {**UNSTRUCTURED, **STRUCTURED}, "unstructured": UNSTRUCTURED, "structured": STRUCTURED}
    for label, options in parts[args.part].items():
        rows[label] = []
        for seed in seeds:
            name = label.replace(" ", "-").replace(":", "of").replace("%", "")
            pruned = os.path.join(args.work, f"pruned-t{args.teacher_steps}-{name}-s{seed}")
            if read_json(os.path.join(pruned, "prune.json")) is None:
                with quiet():
                    prune(dense, pruned, calibration=64, seed=seed, evaluate=False, **options)
            report = read_json(os.path.join(pruned, "prune.json"))
            tuned = trained(finetune_config(pruned, seed), os.path.join(args.work, f"ft-{name}-t{args.teacher_steps}-{args.finetune_steps}-s{seed}"))
            rows[label].append({"pruned": val_loss(pruned), "tuned": tuned["val_loss"], "params": report["params"],
                                "sparsity": report.get("sparsity"), "run": pruned})
            print(f"seed {seed} {label:>14}: val_loss {rows[label][-1]['pruned']:.4f} pruned -> "
                  f"{tuned['val_loss']:.4f} after {args.finetune_steps} steps", flush=True)
    if args.part != "all":
        return 0
    print(f"\n6-layer shakespeare_char ({args.teacher_steps} steps): dense val_loss {dense_loss:.4f} "
          f"(ppl {math.exp(dense_loss):.3f}); mean over seeds {seeds}; fine-tune {args.finetune_steps} steps")
    print(f"{'':>14}  {'sparsity':>8}  {'params':>9}  {'val_loss pruned':>15}  {'ppl':>7}  {'val_loss tuned':>14}  {'ppl':>7}")
    for label, group in rows.items():
        pruned, tuned = (statistics.mean(r[k] for r in group) for k in ("pruned", "tuned"))
        share = group[0].get("sparsity")
        print(f"{label:>14}  {'' if share is None else f'{share:.3f}':>8}  {group[0]['params']:>9,}  {pruned:>15.4f}  "
              f"{math.exp(pruned):>7.3f}  {tuned:>14.4f}  {math.exp(tuned):>7.3f}")
    print("\nstructured (seed 1's models): size, forward tokens/s on one thread")
    speeds = tokens_per_s({"dense": dense, **{k: rows[k][0]["run"] for k in STRUCTURED}})
    flops = {k: (read_json(os.path.join(rows[k][0]["run"], "prune.json")) or {}).get("flops_per_token_after")
             for k in STRUCTURED}
    flops["dense"] = read_json(os.path.join(dense, "summary.json"))["flops_per_token"]
    for label in speeds:
        print(f"{label:>14}  params {rows[label][0]['params']:>9,}  flops/token {flops[label]:>11,}  "
              f"{speeds[label]:>9,.0f} tokens/s ({speeds[label] / speeds['dense']:.2f}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
