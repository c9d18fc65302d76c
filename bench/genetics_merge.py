"""The quality figure of weight-space genetics (issue 12): two fine-tunes of one Foundry base on
different corpora (tiny Shakespeare and the built-in Python corpus, bench/merge_useful.py's
parents), searched for a fitness on a mixture of both: the best GA individual (run_genetics: SLERP
crossover, Gaussian mutation with the 1/5 rule, tournament, elitism) and the best CMA-ES merge
recipe (run_cmaes: per-layer linear weights of the two fine-tunes) against the best parent and a
uniform linear merge, on the held-out split, for several seeds.

    FOUNDRY_DATA=../shared/data python bench/genetics_merge.py --runs runs/merge-useful --out runs/genetics-merge \\
        [--seeds 0,1,2,3,4] [--population 8] [--generations 6] [--ga-population 16] [--ga-generations 4]
        [--batches 4] [--heldout-batches 16] [--json]

Fitness (search and held-out alike): -(bpb on Shakespeare + bpb on Python) / 2, the weighted
plugin over two val_bpb parts; the search sees the first half of each corpus's validation split,
the table is measured on the second half (foundry.genetics.fitness), with --heldout-batches
batches per corpus. Candidates are scored in this process (workers 0): on a busy 2-core machine a
process per candidate costs more than its scoring (the pool is bench/genetics_throughput.py's).
The parents are trained under --runs when missing (merge_useful.train_parents); the parents and
the uniform merge are the same in every seed, the searches draw from the seed. OUT/figure.json
holds every number (also the CMA-ES weights per seed).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import foundry  # noqa: E402
from merge_useful import CORPORA, train_parents  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def mixture(batches: int) -> dict:
    part = lambda label, source: {"name": "val_bpb", "source": source, "batches": batches,  # noqa: E731
                                  "weight": 0.5, "label": label}
    return {"name": "weighted", "parts": [part("shakespeare", CORPORA["shakespeare"]),
                                          part("python", CORPORA["python"])]}


def heldout(model, cfg, spec: dict) -> dict:
    from foundry.genetics import fitness
    scores = fitness.score(model, cfg, spec, "heldout")
    return {"mean_bpb": -scores["fitness"], "shakespeare": scores["shakespeare.val_bpb"],
            "python": scores["python.val_bpb"]}


def cmaes_section(parents: dict, args, seed: int) -> dict:
    return {"method": "linear", "models": [parents["ft_shakespeare"], parents["ft_python"]],
            "parameters": {"weight": {"low": 0.0, "high": 1.0}},          # one weight per model and layer
            "fixed": {"normalize": True}, "population": args.population, "generations": args.generations,
            "sigma": 0.25, "seed": seed, "fitness": mixture(args.batches)}


def ga_recipe(parents: dict, args, seed: int) -> dict:
    # Every child is a SLERP of two parents, 10-40% of the way from the first to the second (a local
    # crossover); tournaments of 2 keep the Shakespeare parent's copies in play for a generation.
    return {"population": args.ga_population, "generations": args.ga_generations, "seed": seed, "elite": 1,
            "selection": {"name": "tournament", "k": 2},
            "operators": [{"name": "slerp", "rate": 1.0, "t": 0.25, "jitter": 0.15},
                          {"name": "gaussian", "rate": 0.5, "sigma": 0.003, "adapt": "one_fifth"}],
            "fitness": mixture(args.batches),
            "init": {"from": [parents["ft_shakespeare"], parents["ft_python"]], "noise": 0.002}}


def run_seed(parents: dict, args, seed: int, spec_heldout: dict) -> dict:
    from foundry.genetics import recipe_from_dict, run_genetics
    from foundry.genetics.cmaes_search import run_cmaes
    from foundry.genetics.genome import build_model, parse
    out = os.path.join(args.out, f"seed{seed}")
    row = {"seed": seed}
    start = time.perf_counter()
    cma = run_cmaes(parse(cmaes_section(parents, args, seed), "cmaes"), os.path.join(out, "cmaes"))
    model, _, cfg = build_model(cma["best"]["recipe"])
    row["cmaes"] = heldout(model, cfg, spec_heldout)
    row["cmaes_weights"] = [m["parameters"]["weight"] for m in cma["best"]["recipe"]["models"]]
    row["cmaes_candidates"], row["cmaes_seconds"] = cma["scored"] + cma["failed"], round(time.perf_counter() - start, 1)
    start = time.perf_counter()
    ga = run_genetics(recipe_from_dict(ga_recipe(parents, args, seed), "ga"), os.path.join(out, "ga"), workers=0,
                      log=lambda message: None)
    model, _, cfg = foundry.load(ga["export"])
    row["ga"] = heldout(model, cfg, spec_heldout)
    row["ga_best"] = {"id": ga["best"]["id"], "operator": ga["best"]["operator"]}
    row["ga_candidates"], row["ga_seconds"] = ga["scored"] + ga["failed"], round(time.perf_counter() - start, 1)
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", default=os.path.join(REPO, "runs", "merge-useful"),
                        help="the parents (trained when missing)")
    parser.add_argument("--out", default=os.path.join(REPO, "runs", "genetics-merge"), help="the searches (replaced)")
    parser.add_argument("--seeds", default="0,1,2,3,4")
    parser.add_argument("--population", type=int, default=8)
    parser.add_argument("--generations", type=int, default=6)
    parser.add_argument("--ga-population", type=int, default=16, help="the GA's (a similar number of candidates)")
    parser.add_argument("--ga-generations", type=int, default=4)
    parser.add_argument("--batches", type=int, default=4, help="search: batches of 16 windows per corpus")
    parser.add_argument("--heldout-batches", type=int, default=16, help="the table: batches per corpus")
    parser.add_argument("--base-tokens", type=int, default=1_000_000)
    parser.add_argument("--ft-tokens", type=int, default=300_000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if not os.environ.get("FOUNDRY_DATA"):
        print("FOUNDRY_DATA is not set (the folder with tinyshakespeare.txt)")
        return 1
    import torch
    torch.set_num_threads(1)
    from foundry.genetics.genome import build_model
    args.out = os.path.abspath(args.out)
    shutil.rmtree(args.out, ignore_errors=True)
    parents = train_parents(os.path.abspath(args.runs), args.base_tokens, args.ft_tokens)
    spec = mixture(args.heldout_batches)
    fixed = {}
    for name, folder in parents.items():
        model, _, cfg = foundry.load(folder)
        fixed[name] = heldout(model, cfg, spec)
    uniform = {"merge_method": "linear", "models": [{"model": parents[n], "parameters": {"weight": 0.5}}
                                                    for n in ("ft_shakespeare", "ft_python")]}
    model, _, cfg = build_model(uniform)
    fixed["uniform linear"] = heldout(model, cfg, spec)
    best_parent = min(parents, key=lambda n: fixed[n]["mean_bpb"])
    rows = []
    for seed in [int(s) for s in args.seeds.split(",")]:
        rows.append(run_seed(parents, args, seed, spec))
        print(f"seed {seed}: cmaes {rows[-1]['cmaes']['mean_bpb']:.4f} ({rows[-1]['cmaes_seconds']} s), "
              f"ga {rows[-1]['ga']['mean_bpb']:.4f} ({rows[-1]['ga_seconds']} s)", file=sys.stderr, flush=True)
    result = {"fixed": fixed, "best_parent": best_parent, "seeds": rows,
              "cmaes_beats_best_parent": sum(r["cmaes"]["mean_bpb"] < fixed[best_parent]["mean_bpb"] for r in rows),
              "ga_beats_best_parent": sum(r["ga"]["mean_bpb"] < fixed[best_parent]["mean_bpb"] for r in rows)}
    with open(os.path.join(args.out, "figure.json"), "w") as f:     # every number, also without --json
        json.dump(result, f, indent=2)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"held-out mean bpb of Shakespeare and Python (lower is better); search: {args.batches} batches per corpus; "
          f"CMA-ES population {args.population} x {args.generations} generations, GA {args.ga_population} x "
          f"{args.ga_generations}")
    print(f"{'model':<28} {'shakespeare':>11} {'python':>8} {'mean':>8}")
    for name, s in fixed.items():
        print(f"{name + (' (best parent)' if name == best_parent else ''):<28} {s['shakespeare']:>11.4f} "
              f"{s['python']:>8.4f} {s['mean_bpb']:>8.4f}")
    print(f"\n{'seed':>4} {'CMA-ES shak':>11} {'python':>8} {'mean':>8} {'GA shak':>9} {'python':>8} {'mean':>8} "
          f"{'cands':>6} {'CMA-ES s':>9} {'GA s':>7}")
    for r in rows:
        c, g = r["cmaes"], r["ga"]
        print(f"{r['seed']:>4} {c['shakespeare']:>11.4f} {c['python']:>8.4f} {c['mean_bpb']:>8.4f} "
              f"{g['shakespeare']:>9.4f} {g['python']:>8.4f} {g['mean_bpb']:>8.4f} "
              f"{r['cmaes_candidates']:>3}/{r['ga_candidates']:<3}{r['cmaes_seconds']:>8} {r['ga_seconds']:>7}")
    margins = {k: [round(fixed[best_parent]["mean_bpb"] - r[k]["mean_bpb"], 4) for r in rows] for k in ("cmaes", "ga")}
    print(f"bpb below the best parent, per seed: CMA-ES {margins['cmaes']}, GA {margins['ga']}")
    n = len(rows)
    print(f"CMA-ES beats the best parent ({best_parent}) in {result['cmaes_beats_best_parent']}/{n} seeds; "
          f"the GA in {result['ga_beats_best_parent']}/{n}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
