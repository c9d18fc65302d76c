"""Token mixers and the Free Transformer pipeline at one token budget on tiny Shakespeare.

    FOUNDRY_DATA=../shared/data python bench/architectures.py                    # 5 designs x 3 seeds
    FOUNDRY_DATA=../shared/data python bench/architectures.py --tokens 40000 --seeds 1 --archs plain,routed
    FOUNDRY_DATA=../shared/data python bench/architectures.py --json out.json

Designs, all at the same small width (--width, 4 heads, context --block) and 6 decoder layers, from
the shipped baselines with overrides:
  plain             baselines/nanogpt.yaml (multi-head attention)
  retention         the same with model.attention=retention (multi-scale retention, RetNet)
  ssm               model.attention=ssm (selective state-space scan, Mamba-style)
  routed            model.attention=routed (top-2 of mha / retention / ssm per token)
  free_transformer  baselines/free_transformer.yaml: non-causal encoder (1 layer, training only),
                    latent (FiLM + rank-8), 3 routed layers, 2 windowed QK-norm attention layers
Each trains --tokens tokens (fp32, train.threads=--threads) per seed and reports, averaged over seeds
(+- standard deviation): tokens/s (the trainer's, evaluation excluded), val_bpb (the frozen
evaluator, the first --eval-bytes bytes of the validation split), training FLOPs, and QPC as in
EvoForge's results table (strangeloopcanon/transformer-evolution, runners/run_experiment.py
compute_qpc): (first logged training loss - last) / total training FLOPs, here in loss per TFLOP;
beside it Foundry's own QPC of sweeps and compares (foundry/search/trials.py: (ln V - val_loss) /
training FLOPs, per TFLOP).
Ratios are against plain. The load average (os.getloadavg) is printed before and after: the
machine is shared, so tokens/s are comparable only within one invocation.
"""
import argparse
import contextlib
import io
import json
import os
import statistics
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

DESIGNS = {
    "plain": ("nanogpt", []),
    "retention": ("nanogpt", ["model.attention=retention"]),
    "ssm": ("nanogpt", ["model.attention=ssm"]),
    "routed": ("nanogpt", ["model.attention=routed"]),
    "free_transformer": ("free_transformer", []),
}


def overrides(args, seed: int) -> list[str]:
    return [f"model.n_embd={args.width}", "model.n_head=4", f"model.block_size={args.block}", "model.dropout=0.0",
            f"train.batch_size={args.batch}", "train.warmup_steps=10", "train.dtype=fp32", f"train.threads={args.threads}",
            f"train.seed={seed}", f"budget.tokens={args.tokens}", f"eval.interval={10 ** 9}",
            f"eval.bytes={args.eval_bytes}"]


def run(name: str, seed: int, args, folder: str) -> dict:
    from foundry import catalog
    from foundry.search import trials
    from foundry.training.loop import train
    baseline, extra = DESIGNS[name]
    design_overrides = list(extra)
    if name == "free_transformer":  # the upper decoder's window scaled with the context (128 of 256)
        design_overrides.append("model.stages=" + json.dumps(_free_transformer_stages(args)))
    cfg = catalog.load(os.path.join(REPO, "baselines", f"{baseline}.yaml"), overrides(args, seed) + design_overrides)
    out = os.path.join(folder, f"{name}-{seed}")
    with contextlib.redirect_stdout(io.StringIO()):   # the trainer's own progress and summary block
        summary = train(cfg, out, log=lambda *_: None)
    if summary["status"] != "done":   # SIGTERM stops the trainer gracefully ("interrupted"): stop here too
        sys.exit(f"{name} seed {seed}: the run ended {summary['status']}")
    with open(os.path.join(out, "metrics.jsonl")) as f:
        losses = [row["loss"] for row in map(json.loads, f) if "loss" in row]
    qpc = (losses[0] - losses[-1]) / summary["train_flops"] * 1e12
    return {"tokens_per_s": summary["tokens_per_s"], "val_bpb": summary["val_bpb"], "qpc": qpc,
            "val_loss": summary["val_loss"], "foundry_qpc": trials.qpc(summary, out) * 1e12,
            "train_flops": summary["train_flops"], "params": summary["params"], "steps": summary["steps"]}


def _free_transformer_stages(args) -> list[dict]:
    import yaml
    with open(os.path.join(REPO, "baselines", "free_transformer.yaml")) as f:
        stages = yaml.safe_load(f)["model"]["stages"]
    for stage in stages:
        if "window" in stage:
            stage["window"] = max(1, args.block // 2)
    return stages


def mean_sd(values) -> tuple[float, float]:
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tokens", type=int, default=61_440, help="training tokens per run (default 61440: 120 steps)")
    p.add_argument("--seeds", type=int, default=3, help="seeds per design (default 3)")
    p.add_argument("--archs", default=",".join(DESIGNS), help=f"comma-separated subset of {', '.join(DESIGNS)}")
    p.add_argument("--width", type=int, default=64, help="n_embd (default 64)")
    p.add_argument("--block", type=int, default=64, help="block_size (default 64)")
    p.add_argument("--batch", type=int, default=8, help="train.batch_size (default 8)")
    p.add_argument("--eval-bytes", type=int, default=10240,
                   help="validation bytes scored (default 10240: the 20 batches of 8 x 64 bytes before the byte slice)")
    p.add_argument("--threads", type=int, default=1, help="train.threads (default 1)")
    p.add_argument("--json", help="also write the per-run results here")
    args = p.parse_args()
    names = args.archs.split(",")
    unknown = set(names) - set(DESIGNS)
    if unknown:
        p.error(f"--archs: unknown {sorted(unknown)} (valid: {', '.join(DESIGNS)})")
    print(f"load average before: {os.getloadavg()}  cores: {os.cpu_count()}  tokens/run: {args.tokens:,}  "
          f"seeds: {args.seeds}", flush=True)
    started, results = time.time(), {}
    with tempfile.TemporaryDirectory() as folder:
        for seed in range(args.seeds):         # seeds outermost: load drifts hit every design alike
            for name in names:
                r = run(name, 1337 + seed, args, folder)
                results.setdefault(name, []).append(r)
                print(f"  {name:<17} seed {seed}: {r['tokens_per_s']:8.0f} tok/s  val_bpb {r['val_bpb']:.4f}  "
                      f"QPC {r['qpc']:.3f}/TFLOP  load {os.getloadavg()[0]:.2f}", flush=True)
    print(f"load average after: {os.getloadavg()}  wall: {time.time() - started:.0f} s\n")
    base = results.get("plain")
    header = (f"{'design':<17} {'params':>8} {'tokens/s':>16} {'val_bpb':>16} {'QPC (dloss/TFLOP)':>19} "
              f"{'Foundry QPC':>17} {'TFLOPs':>7}")
    print(header + ("  tok/s ratio  bpb ratio" if base else ""))
    for name, runs in results.items():
        tps, bpb, qpc, fq = (mean_sd([r[k] for r in runs]) for k in ("tokens_per_s", "val_bpb", "qpc", "foundry_qpc"))
        line = (f"{name:<17} {runs[0]['params']:>8,} {tps[0]:>9.0f} +-{tps[1]:<5.0f} {bpb[0]:>9.4f} +-{bpb[1]:<5.3f} "
                f"{qpc[0]:>11.3f} +-{qpc[1]:<5.3f} {fq[0]:>9.3f} +-{fq[1]:<5.3f} {runs[0]['train_flops'] / 1e12:>7.3f}")
        if base:
            line += f"  {tps[0] / mean_sd([r['tokens_per_s'] for r in base])[0]:>11.2f}  " \
                    f"{bpb[0] / mean_sd([r['val_bpb'] for r in base])[0]:>9.3f}"
        print(line)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": vars(args), "results": results}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
