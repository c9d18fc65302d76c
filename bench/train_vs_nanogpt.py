"""Foundry against nanoGPT's own train.py, side by side, on nanoGPT's "baby" CPU configuration.

    FOUNDRY_DATA=../shared/data python bench/train_vs_nanogpt.py               # 300 steps x 2 rounds each
    FOUNDRY_DATA=../shared/data python bench/train_vs_nanogpt.py --full        # 2000 steps x 3 seeds each
    FOUNDRY_DATA=../shared/data python bench/train_vs_nanogpt.py --threads 1 --override model.activation=gelu
    FOUNDRY_DATA=../shared/data python bench/train_vs_nanogpt.py --row train.dtype=fp32 \
        --row "train.dtype=fp32 train.keep_freed_memory=false"                  # one lever, end to end

Copies ../shared/reference/nanogpt/ (unmodified, MIT) into a scratch folder, writes tiny Shakespeare
there as its data/shakespeare_char/prepare.py does (char-level, first 90% train, last 10% val,
uint16 train.bin / val.bin, meta.pkl; prepare.py itself needs `requests`), then runs nanoGPT's baby
CPU command and `foundry train baselines/shakespeare_char.yaml` interleaved (nanoGPT, Foundry,
nanoGPT, Foundry, ...), each process with the same OMP_NUM_THREADS, and prints ms/step for both and
the ratio nanoGPT / Foundry (above 1: Foundry is faster). Foundry runs once per --row (a list of
overrides) in every round, default train.dtype=fp32 and train.dtype=auto (bf16 on a CPU with AMX or
AVX512-BF16, else the same as fp32 and run once; nanoGPT's CPU path is fp32), so precisions and
levers are compared side by side with nanoGPT and each other.

ms/step: nanoGPT's mean `iter N: ... time Xms` over the timed iterations (the first and those
that follow an evaluation left out); Foundry's 1000 x tokens per step / its summary tokens_per_s
(evaluation time excluded, every step counted). With --full: val loss at step 2000 for both,
nanoGPT's with eval_iters 200 (its estimate from 200 random batches), Foundry's on the whole
validation split, mean and standard deviation over 3 seeds. nanoGPT seeds its RNG with 1337; a
thin runpy harness adds the seed offset to its torch.manual_seed call without touching its code.
"""
import argparse
import json
import os
import pickle
import re
import shutil
import statistics
import subprocess
import sys
import tempfile

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
from foundry import hardware  # noqa: E402

EQUAL_LOSS = 0.01   # the "equal loss": Foundry's mean val loss at most nanoGPT's mean + 0.01
REFERENCE = os.path.join(REPO, "..", "shared", "reference", "nanogpt")
BABY = ["config/train_shakespeare_char.py", "--device=cpu", "--compile=False", "--log_interval=1",
        "--block_size=64", "--batch_size=12", "--n_layer=4", "--n_head=4", "--n_embd=128", "--dropout=0.0"]
# nanoGPT with its seed moved: the same script, its torch.manual_seed(1337 + offset) shifted by SEED_SHIFT
HARNESS = ("import os, runpy, sys, torch\n"
           "shift, seed = int(os.environ['SEED_SHIFT']), torch.manual_seed\n"
           "torch.manual_seed = lambda s: seed(s + shift)\n"
           "sys.argv = ['train.py'] + sys.argv[1:]\n"
           "runpy.run_path('train.py', run_name='__main__')\n")


def prepare(scratch: str, text_path: str) -> None:
    """nanoGPT's folder and its shakespeare_char data, written as prepare.py writes them."""
    shutil.copytree(REFERENCE, scratch, dirs_exist_ok=True)
    folder = os.path.join(scratch, "data", "shakespeare_char")
    os.makedirs(folder, exist_ok=True)
    with open(text_path, encoding="utf-8") as f:
        data = f.read()
    chars = sorted(set(data))
    stoi = {ch: i for i, ch in enumerate(chars)}
    n = len(data)
    for name, part in (("train.bin", data[:int(n * 0.9)]), ("val.bin", data[int(n * 0.9):])):
        np.array([stoi[c] for c in part], dtype=np.uint16).tofile(os.path.join(folder, name))
    with open(os.path.join(folder, "meta.pkl"), "wb") as f:  # nanoGPT's own format, read by its own script
        pickle.dump({"vocab_size": len(chars), "itos": dict(enumerate(chars)), "stoi": stoi}, f)


def run_nanogpt(scratch: str, steps: int, seed: int, threads: int, eval_iters: int) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "SEED_SHIFT": str(seed - 1337)}
    args = [*BABY, f"--max_iters={steps}", f"--lr_decay_iters={steps}", f"--eval_iters={eval_iters}",
            f"--out_dir=out-{seed}-{steps}"]
    proc = subprocess.run([sys.executable, "-c", HARNESS, *args], cwd=scratch, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"nanoGPT failed:\n{proc.stderr[-2000:]}")
    times = {int(m[1]): float(m[2]) for m in re.finditer(r"^iter (\d+): loss [\d.]+, time ([\d.]+)ms", proc.stdout, re.M)}
    evals = {int(m[1]): float(m[2]) for m in re.finditer(r"^step (\d+): train loss [\d.]+, val loss ([\d.]+)",
                                                         proc.stdout, re.M)}
    timed = [t for i, t in times.items() if i > 0 and i % 250 != 0]  # eval_interval 250: those iters include it
    return {"ms_per_step": statistics.mean(timed), "val_loss": evals.get(steps)}


def run_foundry(work: str, steps: int, seed: int, threads: int, overrides: list[str]) -> dict:
    out = os.path.join(work, f"foundry-{seed}-{steps}-{len(os.listdir(work))}")
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    args = [sys.executable, "-m", "foundry.cli", "train", os.path.join(REPO, "baselines", "shakespeare_char.yaml"),
            f"budget.steps={steps}", f"train.seed={seed}", *overrides, "--out", out]
    proc = subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"foundry failed:\n{proc.stderr[-2000:]}")
    with open(os.path.join(out, "summary.json"), encoding="utf-8") as f:
        summary = json.load(f)
    tokens_per_step = summary["train_tokens"] / summary["steps"]
    shutil.rmtree(out)
    return {"ms_per_step": 1000 * tokens_per_step / summary["tokens_per_s"], "val_loss": summary["val_loss"]}


def resolved(row: str) -> str:
    """A row's overrides with train.dtype as this CPU resolves it (auto -> bf16 or fp32), so rows
    that would train alike share one name and run once."""
    return " ".join(f"train.dtype={hardware.compute_dtype('cpu', o.split('=', 1)[1])}"
                    if o.startswith("train.dtype=") else o for o in row.split())


def spread(values: list[float]) -> str:
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.4f} ± {sd:.4f}"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--full", action="store_true", help="2000 steps x 3 seeds each, with val loss at step 2000")
    p.add_argument("--steps", type=int, help="steps per run (default 300, or 2000 with --full)")
    p.add_argument("--rounds", type=int, help="runs of each (default 2, or 3 seeds with --full)")
    p.add_argument("--threads", type=int, default=2, help="OMP_NUM_THREADS of both trainers")
    p.add_argument("--row", action="append", help="Foundry overrides of one row, space-separated, run in every "
                   "round (repeatable; default: train.dtype=fp32, train.dtype=auto)")
    p.add_argument("--override", action="append", default=[], help="extra Foundry override of every row, "
                   "e.g. model.activation=gelu")
    args = p.parse_args()
    data = os.environ.get("FOUNDRY_DATA")
    if not data or not os.path.isfile(os.path.join(data, "tinyshakespeare.txt")):
        raise SystemExit("set FOUNDRY_DATA to the shared data folder (../shared/data)")
    steps = args.steps or (2000 if args.full else 300)
    rounds = args.rounds or (3 if args.full else 2)
    eval_iters = 200 if args.full else 20
    rows = {f"Foundry {resolved(row)}": row.split() for row in args.row or ["train.dtype=fp32", "train.dtype=auto"]}
    print(f"Foundry rows: {', '.join(rows)} (bf16 on this CPU: {hardware.fast_bf16('cpu')})", flush=True)
    with tempfile.TemporaryDirectory(prefix="foundry-vs-nanogpt-") as work:
        scratch = os.path.join(work, "nanogpt")
        prepare(scratch, os.path.join(data, "tinyshakespeare.txt"))
        results = {"nanoGPT": [], **{name: [] for name in rows}}
        for r in range(rounds):
            seed = 1337 + r if args.full else 1337
            results["nanoGPT"].append(run_nanogpt(scratch, steps, seed, args.threads, eval_iters))
            for name, overrides in rows.items():
                results[name].append(run_foundry(work, steps, seed, args.threads, [*overrides, *args.override]))
            print(f"round {r + 1}/{rounds} (seed {seed}): "
                  + ", ".join(f"{name} {runs[-1]['ms_per_step']:.1f}" for name, runs in results.items())
                  + " ms/step", flush=True)
    print(f"\n{steps} steps x {rounds} each, {args.threads} threads, Foundry overrides {args.override or 'none'}")
    ng = [x["ms_per_step"] for x in results["nanoGPT"]]
    width = max(map(len, results))
    for name, runs in results.items():
        ms = [x["ms_per_step"] for x in runs]
        line = f"{name:<{width}} ms/step {spread(ms)}"
        if name != "nanoGPT":
            line += (f"  speed ratio nanoGPT/Foundry {statistics.mean(ng) / statistics.mean(ms):.3f} "
                     f"(per round: {', '.join(f'{a / b:.3f}' for a, b in zip(ng, ms))})")
        print(line)
    if args.full:
        print(f"val loss at step {steps} (nanoGPT: eval_iters {eval_iters}; Foundry: the whole val split); "
              f"equal loss: mean no worse than nanoGPT's mean + {EQUAL_LOSS}")
        ng_loss = [x["val_loss"] for x in results["nanoGPT"]]
        for name, runs in results.items():
            loss = [x["val_loss"] for x in runs]
            verdict = "" if name == "nanoGPT" else \
                f"  equal loss: {statistics.mean(loss) <= statistics.mean(ng_loss) + EQUAL_LOSS}"
            print(f"{name:<{width}} {spread(loss)}  (per seed: {', '.join(f'{v:.4f}' for v in loss)}){verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
