"""Candidates scored per hour by `foundry genetics` on 2 CPU workers, and how the workers spent
their time: scoring, starting (Python, torch, the model and the data in a fresh trial process)
and idle (no trial: the driver breeding, saving, computing diversity, or a worker waiting for the
last share of a generation).

    FOUNDRY_DATA=../shared/data python bench/genetics_throughput.py [--population 8] [--generations 3]
        [--per-trial 0 1] [--workers 2] [--json]

A small byte-level GPT (2 layers, n_embd 64, block 128; random weights, two noisy "fine-tunes")
is evolved with SLERP crossover, Gaussian mutation and elitism; fitness val_bpb on the search half
of tinyshakespeare's validation split (4 windows of 8 x 128 tokens). Each `--per-trial` value is one
run: 0 is the default (a generation's unscored candidates shared out, one trial per worker), 1 one
process per candidate. Candidates counted: individuals scored on the search split (elites and
unmutated copies are not re-scored) plus the held-out re-score of the best. The machine is shared:
the load average (os.getloadavg) before and after each run is printed beside its figures.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import torch  # noqa: E402

from foundry import catalog  # noqa: E402
from foundry.data import build_tokenizer  # noqa: E402
from foundry.genetics.evolve import open_genetics_pool, run_genetics  # noqa: E402
from foundry.genetics.recipe import from_dict  # noqa: E402
from foundry.model.gpt import GPT  # noqa: E402
from foundry.weights.checkpoint import save_weights  # noqa: E402

MODEL = {"n_layer": 2, "n_head": 2, "n_embd": 64, "block_size": 128, "vocab_size": 256}   # byte tokenizer


def make_runs(root: str) -> list[str]:
    """Two checkpoints of one architecture: random weights and a noisy copy."""
    cfg = catalog.from_dict({"name": "bench", "model": MODEL, "data": {"tokenizer": "byte"},
                             "train": {"batch_size": 8}, "eval": {"bytes": 4096}, "budget": {"steps": 1}})
    tokenizer = build_tokenizer("byte", "")
    torch.manual_seed(0)
    net = GPT(cfg.model)
    folders = []
    for name in ("a", "b"):
        folder = os.path.join(root, name, "checkpoint")
        os.makedirs(folder)
        save_weights(folder, net, cfg, tokenizer)
        folders.append(os.path.dirname(folder))
        with torch.no_grad():
            for p in net.parameters():
                p.add_(torch.randn_like(p) * 0.02)
    return folders


class TimedPool:
    """The pool, with each finished trial's start, end and in-trial scoring seconds recorded."""

    def __init__(self, pool):
        self.pool, self.trials = pool, []

    def __getattr__(self, name):
        return getattr(self.pool, name)

    def poll(self):
        events = self.pool.poll()
        for e in events:
            if e.result is not None:
                results = (e.result.summary or {}).get("results", {})
                scoring = sum(r.get("seconds", {}).get("total", 0.0) for r in results.values())
                self.trials.append((e.result.started_at, e.result.finished_at, scoring, len(results)))
        return events


def measure(runs, data: str, out: str, args, per_trial: int) -> dict:
    recipe = from_dict({"population": args.population, "generations": args.generations, "seed": 0, "elite": 1,
                        "operators": [{"name": "slerp", "rate": 0.6, "jitter": 0.1},
                                      {"name": "gaussian", "rate": 0.9, "sigma": 0.02}],
                        "fitness": {"name": "val_bpb", "source": os.path.join(data, "tinyshakespeare.txt"),
                                    "batches": 4},
                        "init": {"from": runs, "noise": 0.02}}, "bench")
    load_before = os.getloadavg()
    pool = TimedPool(open_genetics_pool("local", args.workers, out, timeout_s=3600))
    start = time.time()
    try:
        summary = run_genetics(recipe, out, pool=pool, per_trial=per_trial or None, log=lambda m: None,
                               progress=lambda row: None)
    finally:
        pool.close()
    wall = time.time() - start
    busy = sum(end - begin for begin, end, _, _ in pool.trials)
    scoring = sum(s for _, _, s, _ in pool.trials)
    scored = sum(n for _, _, _, n in pool.trials)
    capacity = args.workers * wall
    return {"per_trial": per_trial or "auto (one share a worker)", "workers": args.workers, "trials": len(pool.trials),
            "candidates_scored": scored, "wall_s": round(wall, 1), "candidates_per_hour": round(scored / wall * 3600),
            "worker_idle_share": round(1 - busy / capacity, 3),
            "worker_starting_share": round((busy - scoring) / capacity, 3),
            "worker_scoring_share": round(scoring / capacity, 3),
            "scoring_s_per_candidate": round(scoring / max(1, scored), 3),
            "best_search_fitness": summary["best"]["fitness"], "best_heldout_fitness": summary["best"]["heldout"],
            "loadavg_before": [round(x, 2) for x in load_before],
            "loadavg_after": [round(x, 2) for x in os.getloadavg()], "cpu_count": os.cpu_count()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--population", type=int, default=8)
    parser.add_argument("--generations", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--per-trial", type=int, nargs="+", default=[0, 1], help="0: one share per worker")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    data = os.environ.get("FOUNDRY_DATA")
    if not data or not os.path.isfile(os.path.join(data, "tinyshakespeare.txt")):
        sys.exit("set FOUNDRY_DATA to the shared data folder (../shared/data)")
    rows = []
    with tempfile.TemporaryDirectory() as root:
        runs = make_runs(root)
        for per_trial in args.per_trial:
            rows.append(measure(runs, data, os.path.join(root, f"out-{per_trial}"), args, per_trial))
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    for row in rows:
        print("---")
        print("\n".join(f"{key}: {value}" for key, value in row.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
