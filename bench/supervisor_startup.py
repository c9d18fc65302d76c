"""Supervisor start-up: seconds from launching `foundry run` to its first trial starting.

    python bench/supervisor_startup.py                 # 3 launches, 2 CPU workers
    python bench/supervisor_startup.py --rounds 5 --workers 1

Builds a temporary git repository holding baselines/tiny.yaml (as bench/supervisor_overhead.py),
launches `foundry run --generations 1` in it, and watches the campaign folder every 20 ms:
  forked      the first trial's process exists (its run folder appears: the pool made it)
  training    the first trial wrote progress.json at its first logged step (model built, data
              loaded, the step loop running)
then stops the supervisor (SIGTERM: it kills its trials and exits) and starts the next round.
The goal (issue 18) is the first trial within 5 s of launch.
"""
import argparse
import glob
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

from supervisor_overhead import make_repo   # bench/ is this script's folder: sys.path[0]


def first(pattern: str, deadline: float) -> float | None:
    while time.time() < deadline:
        if glob.glob(pattern):
            return time.time()
        time.sleep(0.02)
    return None


def one_launch(folder: str, workers: int) -> tuple[float, float]:
    repo = make_repo(folder, 30.0)
    runs = os.path.join(repo.working_tree_dir, "experiments", "*", "gen_*", "runs", "*")
    start = time.time()
    proc = subprocess.Popen([sys.executable, "-m", "foundry.cli", "run", "--generations", "1",
                             "--population", "1", "--workers", str(workers)],
                            cwd=repo.working_tree_dir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        forked = first(runs, start + 120)
        training = first(os.path.join(runs, "progress.json"), start + 120)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    if forked is None or training is None:
        raise SystemExit("no trial started within 120 s")
    return forked - start, training - start


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--workers", type=int, default=2)
    args = p.parse_args()
    folder = tempfile.mkdtemp(prefix="foundry-startup-")
    forked, training = [], []
    try:
        for round_ in range(args.rounds):
            f, t = one_launch(os.path.join(folder, f"repo{round_}"), args.workers)
            forked.append(f)
            training.append(t)
            print(f"launch {round_ + 1}: first trial forked {f:.2f} s, training {t:.2f} s", flush=True)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    print(f"launch to first trial forked: mean {statistics.mean(forked):.2f} s, "
          f"first trial training: mean {statistics.mean(training):.2f} s "
          f"(max {max(training):.2f} s; goal < 5 s); load average {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
