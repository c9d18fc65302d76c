"""The supervisor on the local pool against the Ray backend, on the same machine: trials per hour
and the share of worker time that is idle.

    python bench/backends.py                         # 20-second trials, 2 workers / a 2-CPU Ray head
    python bench/backends.py --seconds 10 --population 1 --confirm-seeds 1   # quicker

For each backend in turn it builds a fresh temporary git repository holding baselines/tiny.yaml
with a wall-clock budget of --seconds per trial and runs `foundry run --generations 1` on it:
`--workers W` locally, then `--backend ray` on a one-node Ray cluster started here with W CPUs
on 127.0.0.1 (its start-up is not counted: a cluster is already up when a campaign starts). From
the campaign's ledger:
  trials per hour   finished trials / supervisor wall time
  idle share        1 - (sum of trial wall time, start to finish as the supervisor saw it) /
                    (W x supervisor wall time): workers without a trial, whatever the reason
                    (start-up, the supervisor's own work, phase barriers, Ray placing actors)
  trainer share     sum of summary.json wall_s (inside the trainer) / (W x supervisor wall time)
The machine's load average is printed before and after each: on a shared machine the figures
are only comparable side by side.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from bench.supervisor_overhead import make_repo  # noqa: E402
from tests.ray_cluster import start_head, stop_head  # noqa: E402


def campaign(backend_args: list, args, folder: str) -> dict:
    repo = make_repo(os.path.join(folder, "repo"), args.seconds)
    load_before = os.getloadavg()
    start = time.time()
    done = subprocess.run([sys.executable, "-m", "foundry.cli", "run", "--generations", "1",
                           "--population", str(args.population), "--confirm-seeds", str(args.confirm_seeds),
                           *backend_args], cwd=repo.working_tree_dir, capture_output=True, text=True)
    wall = time.time() - start
    if done.returncode != 0:
        raise SystemExit(done.stdout[-3000:] + done.stderr[-3000:])
    from agent.ledger import Ledger
    ledger = Ledger(os.path.join(repo.working_tree_dir, "experiments", "tiny", "ledger.sqlite"), readonly=True)
    trials = [t for t in ledger.trials() if t["finished_at"]]
    ledger.close()
    busy = sum(t["finished_at"] - t["started_at"] for t in trials)
    inside = sum(t["train_s"] or 0.0 for t in trials)
    worker_time = args.workers * wall
    return {"trials": len(trials), "statuses": sorted({t["status"] for t in trials}),
            "supervisor_wall_s": round(wall, 1), "trials_per_hour": round(len(trials) / (wall / 3600), 1),
            "idle_share": round(1 - busy / worker_time, 4), "trainer_share": round(inside / worker_time, 4),
            "mean_trial_wall_s": round(busy / len(trials), 1),
            "load_average_before": [round(x, 2) for x in load_before],
            "load_average_after": [round(x, 2) for x in os.getloadavg()]}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=20.0, help="training budget of each trial")
    p.add_argument("--workers", type=int, default=2, help="local workers = CPUs of the Ray head")
    p.add_argument("--population", type=int, default=3)
    p.add_argument("--confirm-seeds", type=int, default=2)
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    figures = {}
    folder = tempfile.mkdtemp(prefix="foundry-backends-")
    try:
        figures["local"] = campaign(["--workers", str(args.workers)], args, os.path.join(folder, "local"))
        print(f"local: {json.dumps(figures['local'])}", flush=True)
        head, address = start_head(os.path.join(folder, "ray-head.log"), cpus=args.workers)
        try:
            figures["ray"] = campaign(["--backend", "ray", "--address", address], args, os.path.join(folder, "ray"))
        finally:
            stop_head(head)
        print(f"ray: {json.dumps(figures['ray'])}", flush=True)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    result = {"trial_seconds": args.seconds, "workers": args.workers, "population": args.population,
              "confirm_seeds": args.confirm_seeds, "cores": len(os.sched_getaffinity(0)), **figures}
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"\n{args.seconds:.0f}-second trials, {args.workers} workers, 1 generation "
          f"(population {args.population}, {args.confirm_seeds} confirmation seeds)")
    print(f"{'backend':>8} {'trials':>6} {'wall s':>7} {'trials/h':>8} {'idle share':>10} {'trainer share':>13} "
          f"{'trial wall s':>12}  load average before -> after")
    for name, f in figures.items():
        print(f"{name:>8} {f['trials']:>6} {f['supervisor_wall_s']:>7} {f['trials_per_hour']:>8} {f['idle_share']:>10.1%} "
              f"{f['trainer_share']:>13.1%} {f['mean_trial_wall_s']:>12}  {f['load_average_before']} -> "
              f"{f['load_average_after']}")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
