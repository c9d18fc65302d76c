"""The supervisor's decisions on a known landscape: false-promotion rate, power, learned vs random.

    python bench/discovery_simulation.py [--reps 20] [--generations 36] [--jobs 2]

Runs the real loop (agent/loop.py) on the stub trainer of tests/agent/simulation.py (what is
stubbed is only the trial: its value is the landscape's for the config plus Gaussian seed noise of
sd 0.01; proposers, ledger, t-tests, sequential confirmation, git promotions are real), in three
experiments with the default settings (population 3, confirm 3 -> 6 seeds, alpha 0.05):
  null      every change does nothing: the share of confirmation tests that promote (false-promotion
            rate; Clopper-Pearson 95% interval), and what the rule of before (normal z = 2 over the
            screening seed + 2 confirmation seeds, unpaired) would have promoted on the same trials
  power     every new change improves by 2 sd (0.02): the share of its tests that promote
  target    REALISTIC landscape (a few changes help, several hurt, most do nothing; lr 4x too low):
            median trials (screen + confirm) until the committed baseline is 0.05 better, learned
            against random, --reps repetitions each (goal: learned <= half of random)
"""
import argparse
import os
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor

from scipy import stats as scipy_stats

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
from tests.agent.simulation import REALISTIC, Landscape, confirmation_tests, trials_to_target  # noqa: E402

TMP = "/dev/shm" if os.path.isdir("/dev/shm") else None


def tests_of(args):
    return confirmation_tests(*args, folder=TMP)


def to_target(args):
    import tempfile
    proposer, salt, generations = args
    with tempfile.TemporaryDirectory(dir=TMP) as folder:
        return trials_to_target(folder, Landscape(**REALISTIC, salt=salt), proposer, 1.99, seed=salt,
                                max_generations=generations)


def rate(rows, key="kind", value="promote"):
    k, n = sum(r[key] == value for r in rows), len(rows)
    ci = scipy_stats.binomtest(k, n).proportion_ci(0.95) if n else None
    return k, n, ci


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--reps", type=int, default=20, help="campaigns per experiment")
    p.add_argument("--generations", type=int, default=36, help="generations per null / power campaign")
    p.add_argument("--jobs", type=int, default=2)
    args = p.parse_args()
    start = time.time()
    with ProcessPoolExecutor(args.jobs) as pool:
        null = [r for rows in pool.map(tests_of, [(0.0, s, args.generations) for s in range(args.reps)]) for r in rows]
        power = [r for rows in pool.map(tests_of, [(-0.02, 1000 + s, args.generations) for s in range(args.reps)])
                 for r in rows if abs(r["effect"] + 0.02) < 1e-9]
        target = {prop: list(pool.map(to_target, [(prop, s, 80) for s in range(args.reps)]))
                  for prop in ("learned", "random")}
    k, n, ci = rate(null)
    print(f"null changes: {k} of {n} confirmation tests promoted: false-promotion rate {k / n:.4f} "
          f"(95% CI [{ci.low:.4f}, {ci.high:.4f}]; alpha 0.05); mean seeds a side "
          f"{statistics.mean(r['seeds'] for r in null):.2f}")
    old = sum(r["old_rule"] for r in null)
    print(f"  the rule of before on the same trials: {old} of {n}: {old / n:.4f}")
    k, n, ci = rate(power)
    print(f"2-sd changes: {k} of {n} confirmation tests promoted: power {k / n:.4f} (95% CI [{ci.low:.4f}, "
          f"{ci.high:.4f}]); mean seeds a side {statistics.mean(r['seeds'] for r in power):.2f}")
    medians = {prop: statistics.median(x if x is not None else 10 ** 6 for x in v) for prop, v in target.items()}
    for prop, v in target.items():
        print(f"{prop}: median trials to target {medians[prop]} over {len(v)} repetitions "
              f"(not reached in 80 generations: {v.count(None)}); all: {v}")
    print(f"learned / random: {medians['learned'] / medians['random']:.2f} (goal <= 0.5); {time.time() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
