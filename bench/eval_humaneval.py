"""Bench: HumanEval sandbox throughput on the 164 canonical solutions; prints figures.

    FOUNDRY_DATA=../shared/data python bench/eval_humaneval.py [--workers 2] [--repeat 1]

Each solution runs as its own sandboxed process (foundry.benchmarks.sandbox): fresh temporary
folder, clean environment, rlimits, guard, own session. Prints samples/s and the per-sample
latency; every canonical solution must pass (the script exits 1 otherwise).
"""
import argparse
import os
import statistics
import sys
import time

from foundry.benchmarks.common import EvalOptions
from foundry.benchmarks.humaneval import HumanEval


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--workers", type=int, default=2, help="sandboxes at once")
    p.add_argument("--repeat", type=int, default=1, help="passes over the 164 solutions")
    p.add_argument("--timeout", type=float, default=20.0)
    p.add_argument("--data", default=None, help="data folder (default $FOUNDRY_DATA)")
    args = p.parse_args()
    task = HumanEval(EvalOptions(data_dir=args.data, timeout=args.timeout, workers=args.workers))
    problems = task.problems()
    pairs = [(p, p["canonical_solution"]) for p in problems] * args.repeat
    start = time.perf_counter()
    items = task.check(pairs)
    seconds = time.perf_counter() - start
    failed = [(it["task_id"], it["status"], it["error"]) for it in items if not it["passed"]]
    latencies = sorted(it["seconds"] for it in items)
    print(f"machine: cpus {os.cpu_count()}, load average {os.getloadavg()[0]:.1f}, euid {os.geteuid()}")
    print(f"samples: {len(items)}")
    print(f"workers: {args.workers}")
    print(f"passed: {len(items) - len(failed)}")
    print(f"seconds: {seconds:.2f}")
    print(f"samples_per_s: {len(items) / seconds:.1f}")
    print(f"latency_median_s: {statistics.median(latencies):.3f}")
    print(f"latency_max_s: {latencies[-1]:.3f}")
    for failure in failed:
        print(f"FAILED: {failure}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
