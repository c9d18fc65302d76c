"""One run on 1 and on N processes (torchrun, DDP and FSDP2), side by side: tokens/s and whether
the loss curves agree.

    FOUNDRY_DATA=../shared/data python bench/parallel_train.py                  # CPU: shakespeare_char, 1 vs 2
    FOUNDRY_DATA=../shared/data python bench/parallel_train.py --steps 100 --rounds 1
    python bench/parallel_train.py --gpt2-small --nproc 1 8 --steps 50          # GPUs: GPT-2-small, bf16

Each run is `foundry train CONFIG budget.steps=S ... --nproc N` in a subprocess, one after
another and repeated --rounds times in turn (1, DDP, FSDP, 1, ...), so a busy machine slows all
alike; the load average is printed with the figures. The processes share the cores: a 1-process
run gets all of them as threads, N processes cores/N threads each; on a machine whose cores are
oversubscribed (load average well above the cores) 2 OpenMP threads wait on each other and run
several times slower than 1, so measure there with --threads 1 as well (every process 1 thread).
tokens/s is the summary's (global tokens over training time: evaluation, start-up and torchrun
excluded); `max rel dloss` is the largest |loss_N - loss_1| / loss_1 over the steps of the curve
against the 1-process run of the same round (same config, same global batch). On GPUs
(--gpt2-small) each rank takes a GPU; MFU is against the data-sheet bf16 peak of all of them (on
a CPU against a matmul peak measured once per thread count and cached, so CPU MFU figures are not
comparable between thread counts).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from bench.train_speed import GPT2_SMALL  # noqa: E402


def run(config, overrides, nproc, strategy, out, threads) -> dict:
    argv = [sys.executable, "-m", "foundry.cli", "train", config, *overrides, f"train.strategy={strategy}",
            "--out", out, "--nproc", str(nproc)]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "PYTHONUNBUFFERED": "1"}
    done = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=REPO)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({done.returncode}):\n{done.stdout[-3000:]}{done.stderr[-3000:]}")
    with open(os.path.join(out, "summary.json")) as f:
        summary = json.load(f)
    with open(os.path.join(out, "metrics.jsonl")) as f:
        summary["curve"] = [r["loss"] for r in map(json.loads, f) if "loss" in r]
    return summary


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--nproc", type=int, nargs="+", default=[1, 2], help="process counts (the first is the reference)")
    p.add_argument("--strategies", nargs="+", default=["ddp", "fsdp"], help="strategies of the multi-process runs")
    p.add_argument("--threads", type=int, default=0, help="threads per process (0 = the cores divided by the processes)")
    p.add_argument("--gpt2-small", action="store_true", help="GPT-2-small-sized model in bf16 (a GPU run)")
    p.add_argument("overrides", nargs="*", help="more dotted overrides, e.g. train.batch_size=64")
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    cores = len(os.sched_getaffinity(0))
    if args.gpt2_small:
        config, overrides = os.path.join(REPO, "baselines", "tiny.yaml"), GPT2_SMALL
    else:
        config = os.path.join(REPO, "baselines", "shakespeare_char.yaml")
        overrides = ["eval.bytes=32768"]
    overrides = [*overrides, f"budget.steps={args.steps}", f"eval.interval={args.steps}", *args.overrides]
    plan = [(n, s) for n in args.nproc for s in (["none"] if n == 1 else args.strategies)]
    load_before = os.getloadavg()
    rows = {key: [] for key in plan}
    with tempfile.TemporaryDirectory(prefix="foundry-parallel-") as tmp:
        for r in range(args.rounds):
            reference = None
            for nproc, strategy in plan:
                out = os.path.join(tmp, f"r{r}-{strategy}-{nproc}")
                summary = run(config, overrides, nproc, strategy, out, args.threads or max(1, cores // nproc))
                reference = reference or summary["curve"]
                summary["max_rel_dloss"] = max(abs(a - b) / abs(b) for a, b in zip(summary["curve"], reference))
                rows[(nproc, strategy)].append(summary)
                print(f"round {r + 1}: {nproc} x {strategy}: {summary['tokens_per_s']:,.0f} tok/s, "
                      f"final loss {summary['curve'][-1]:.4f}, max rel dloss {summary['max_rel_dloss']:.2e}",
                      flush=True)
    figures = []
    for (nproc, strategy), runs in rows.items():
        tps = [s["tokens_per_s"] for s in runs]
        figures.append({"nproc": nproc, "strategy": runs[0]["strategy"],
                        "threads_each": args.threads or max(1, cores // nproc),
                        "tokens_per_s": [round(t) for t in tps], "tokens_per_s_mean": round(statistics.mean(tps)),
                        "mfu": round(statistics.mean(s["mfu"] or 0 for s in runs), 5),
                        "final_loss": round(runs[0]["curve"][-1], 5), "val_loss": round(runs[0]["val_loss"], 5),
                        "max_rel_dloss": max(s["max_rel_dloss"] for s in runs)})
    result = {"config": os.path.basename(config), "steps": args.steps, "rounds": args.rounds, "cores": cores,
              "device": rows[plan[0]][0]["device"], "load_average_before": [round(x, 2) for x in load_before],
              "load_average_after": [round(x, 2) for x in os.getloadavg()], "runs": figures}
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"\n{result['config']}, {args.steps} steps x {args.rounds} rounds on {cores} cores ({result['device']}); "
          f"load average {result['load_average_before']} -> {result['load_average_after']}")
    print(f"{'processes':>9} {'strategy':>8} {'threads':>7} {'tok/s (mean)':>12} {'per round':>18} {'MFU':>8} "
          f"{'final loss':>10} {'val_loss':>9} {'max rel dloss':>13}")
    for f in figures:
        print(f"{f['nproc']:>9} {f['strategy']:>8} {f['threads_each']:>7} {f['tokens_per_s_mean']:>12,} "
              f"{str(f['tokens_per_s']):>18} {f['mfu']:>8.4f} {f['final_loss']:>10.4f} {f['val_loss']:>9.4f} "
              f"{f['max_rel_dloss']:>13.2e}")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
