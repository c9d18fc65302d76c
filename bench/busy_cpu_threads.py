"""Training speed on a busy CPU: `foundry train` tokens/s while another process holds one core,
with torch's default thread count (one per core: what foundry used before train.threads) and
with foundry's own choice (train.threads=0: the cores free when the run starts), side by side.

    python bench/busy_cpu_threads.py                       # 3 rounds x 40 steps of baselines/tiny.yaml
    python bench/busy_cpu_threads.py --before ../main      # also the code of another checkout, unchanged
    python bench/busy_cpu_threads.py --rounds 1 --steps 20 # a quick look

The script starts the load itself (a Python busy loop, one core) and keeps it running through
every run; the configurations take turns within each round so they share the machine's state.
Each run is a real `foundry train` process without OMP_NUM_THREADS; its tokens/s (eval time
excluded) and the thread line of its header are printed, then the median per configuration and
the ratio to torch's default. The load average is printed too: other people's work on a shared
machine counts as load as well.
"""
import argparse
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def train_once(code_dir: str, extra: list[str], steps: int, out: str) -> tuple[float, str]:
    """(tokens/s, the threads part of the run header) of one `foundry train` run of `code_dir`'s code."""
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    env.update(PYTHONPATH=code_dir, PYTHONDONTWRITEBYTECODE="1")
    command = [sys.executable, "-m", "foundry.cli", "train", os.path.join(REPO, "baselines", "tiny.yaml"),
               f"budget.steps={steps}", "eval.interval=100000", "eval.bytes=1024", "--out", out, *extra]
    done = subprocess.run(command, cwd=code_dir, env=env, capture_output=True, text=True, timeout=1800)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr[-2000:]}")
    rate = float(re.search(r"^tokens_per_s: (\S+)", done.stdout, re.M).group(1))
    threads = re.search(r"\d+ threads? \([^)]*\)", done.stdout)   # the run header says it (since train.threads)
    return rate, threads.group(0) if threads else "threads not shown"


def torch_default_threads() -> int:
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    out = subprocess.run([sys.executable, "-c", "import torch; print(torch.get_num_threads())"], env=env,
                         capture_output=True, text=True, check=True)
    return int(out.stdout)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--steps", type=int, default=40, help="training steps per run (tiny: 2048 tokens a step)")
    p.add_argument("--before", help="another checkout (e.g. the main branch) whose default is also measured")
    args = p.parse_args()
    default = torch_default_threads()
    configs = {f"torch default ({default} threads)": (REPO, ["--threads", str(default)]),
               "foundry's choice (train.threads=0)": (REPO, [])}
    if args.before:
        configs[f"before: {os.path.abspath(args.before)} default"] = (os.path.abspath(args.before), [])
    rates = {name: [] for name in configs}
    print(f"{os.cpu_count()} cores; load average before the load: {os.getloadavg()[0]:.2f}")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))   # `timeout` too ends the busy loop (finally)
    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for r in range(args.rounds):
                for i, (name, (code_dir, extra)) in enumerate(configs.items()):
                    rate, header = train_once(code_dir, extra, args.steps, os.path.join(tmp, f"r{r}-{i}"))
                    rates[name].append(rate)
                    print(f"round {r + 1}  {name:<40} {rate:9,.0f} tokens/s   [{header}]", flush=True)
    finally:
        hog.kill()
        hog.wait()
    print(f"load average at the end (1 min): {os.getloadavg()[0]:.2f}")
    reference = statistics.median(next(iter(rates.values())))
    print(f"\nmedian tokens/s over {args.rounds} round(s), {args.steps} steps each, one core held by a busy loop:")
    for name, values in rates.items():
        median = statistics.median(values)
        print(f"  {name:<40} {median:9,.0f}   x{median / reference:.2f} vs torch's default")
    return 0


if __name__ == "__main__":
    sys.exit(main())
