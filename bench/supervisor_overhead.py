"""Supervisor overhead: the share of worker time not spent inside training, and trials per hour.

    python bench/supervisor_overhead.py                       # 60-second trials, 2 CPU workers
    python bench/supervisor_overhead.py --seconds 20 --keep   # quicker; keep the temp repo

Builds a temporary git repository holding baselines/tiny.yaml with a wall-clock budget of
--seconds per trial, runs `foundry run --generations 1` on it with --workers CPU workers and
reads the campaign's ledger. Figures:
  trainer share     sum of summary.json wall_s (time inside foundry.training.loop.train: data, model,
                    steps, eval, checkpoint) over worker time = workers x supervisor wall time
  overhead          1 - trainer share: the supervisor's start-up (its own and the per-worker
                    preloader's torch import, paid once per `foundry run`), trial start-up,
                    the supervisor's work (proposals, ranking, git) and workers idle at the
                    phase barriers; the target is under 5% with 60-second trials
  steady overhead   the same from the first trial's start to the last one's end (start-up
                    of the supervisor excluded: what a long campaign converges to)
  per-trial spawn   mean of (trial process wall - summary wall_s)
  trials per hour   finished trials / supervisor wall time
Runs for several minutes (2 to 4 rounds of --seconds per worker); run it once.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import git
import yaml

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def make_repo(folder: str, seconds: float) -> git.Repo:
    with open(os.path.join(REPO_ROOT, "baselines", "tiny.yaml"), encoding="utf-8") as f:
        data = yaml.safe_load(f)
    data["budget"] = {"seconds": seconds}
    repo = git.Repo.init(folder, initial_branch="main")
    with repo.config_writer() as cw:
        cw.set_value("user", "name", "bench")
        cw.set_value("user", "email", "bench@example.invalid")
    os.makedirs(os.path.join(folder, "baselines"))
    with open(os.path.join(folder, "baselines", "tiny.yaml"), "w") as f:
        yaml.safe_dump(data, f, sort_keys=False)
    with open(os.path.join(folder, ".gitignore"), "w") as f:
        f.write("experiments/\n")
    repo.index.add(["baselines/tiny.yaml", ".gitignore"])
    repo.index.commit("bench baseline")
    return repo


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=60.0, help="training budget of each trial")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--population", type=int, default=3, help="candidates (+ the baseline) per generation")
    p.add_argument("--confirm-seeds", type=int, default=2)
    p.add_argument("--keep", action="store_true", help="keep the temporary repository")
    args = p.parse_args()

    folder = tempfile.mkdtemp(prefix="foundry-bench-")
    repo = make_repo(os.path.join(folder, "repo"), args.seconds)
    load_before = os.getloadavg()
    start = time.time()
    done = subprocess.run([sys.executable, "-m", "foundry.cli", "run", "--generations", "1",
                           "--population", str(args.population), "--workers", str(args.workers),
                           "--confirm-seeds", str(args.confirm_seeds)],
                          cwd=repo.working_tree_dir, capture_output=True, text=True)
    wall = time.time() - start
    if done.returncode != 0:
        print(done.stdout + done.stderr, file=sys.stderr)
        return 1

    from agent.ledger import Ledger
    ledger = Ledger(os.path.join(repo.working_tree_dir, "experiments", "tiny", "ledger.sqlite"), readonly=True)
    trials = [t for t in ledger.trials() if t["finished_at"]]
    inside = sum(t["train_s"] or 0.0 for t in trials)            # summary.json wall_s
    spawned = sum(t["wall_s"] or 0.0 for t in trials)            # subprocess wall
    worker_time = args.workers * wall
    steady_time = args.workers * (max(t["finished_at"] for t in trials) - min(t["started_at"] for t in trials))
    figures = {
        "trial_seconds": args.seconds, "workers": args.workers, "trials": len(trials),
        "statuses": sorted({t["status"] for t in trials}), "supervisor_wall_s": round(wall, 1),
        "trainer_share": round(inside / worker_time, 4), "overhead_share": round(1 - inside / worker_time, 4),
        "steady_overhead_share": round(1 - inside / steady_time, 4),
        "spawn_overhead_share": round(1 - inside / spawned, 4) if spawned else None,
        "mean_spawn_overhead_s": round((spawned - inside) / len(trials), 2) if trials else None,
        "trials_per_hour": round(len(trials) / (wall / 3600), 1),
        "decision": (ledger.decision(1) or {}).get("kind"),
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "cpu_count": os.cpu_count(),
    }
    ledger.close()
    print(f"{len(trials)} trials of {args.seconds:.0f} s on {args.workers} CPU workers in {wall:.1f} s")
    print(f"overhead (worker time not inside training): {100 * figures['overhead_share']:.2f}%  "
          f"(target < 5%)")
    print(f"steady-state overhead (first trial start to last trial end): "
          f"{100 * figures['steady_overhead_share']:.2f}%")
    print(f"  of which process start-up per trial: {figures['mean_spawn_overhead_s']} s "
          f"({100 * figures['spawn_overhead_share']:.2f}% of trial wall time)")
    print(f"trials per hour: {figures['trials_per_hour']}")
    print(json.dumps(figures))
    if args.keep:
        print(f"kept {folder}")
    else:
        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
