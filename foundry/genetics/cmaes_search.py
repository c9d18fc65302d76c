"""Evolutionary merging: CMA-ES (the `cmaes` library) over a merge genome's per-layer parameters,
each candidate merged in memory and scored by a fitness plugin; resumable after kill -9.

    from foundry.genetics import genome
    spec = genome.parse(yaml.safe_load(open("recipe.yaml"))["merge"], "recipe.yaml: merge")
    summary = run_cmaes(spec, "runs/evo", pool=None, progress=print)
    summary["best"]["recipe"], summary["best"]["fitness"], summary["best"]["heldout"]

The search runs in the unit cube [0, 1]^d (genome.py maps it to each knob's bounds), from the
genome's initial point with step size `sigma`. Each generation: ask the population, make each
candidate a mergekit-format recipe, score them on the fitness "search" split (through the worker
pool when one is given, else in this process), tell CMA-ES the results (it minimizes -fitness;
a failed candidate gets a value worse than every scored one of its generation), then write
OUT/cmaes.json atomically. At the end the best candidate by search fitness is re-scored on the
"heldout" split and merged into OUT/best (a normal Foundry checkpoint with merge.yaml/merge.json).

Crash safety, without pickle: OUT/cmaes.json holds the merge section and every finished
generation's candidates (x, fitness, scores). On a rerun a fresh CMA with the same seed replays
that history (ask, check x is bitwise the saved one, tell the saved values), which puts the
sampler in exactly the state it had, so the next generation is bitwise the one an uninterrupted
run asks. A generation interrupted half-way is asked again from the same state and re-scored.
"""
from __future__ import annotations

import json
import math
import os

import numpy as np

from foundry.errors import UserError
from foundry.io import atomic_write_text

STATE_FILE = "cmaes.json"
STATE_VERSION = 1
# section keys that may change between a run and its resumption (they do not change what was asked)
RESUMABLE_CHANGES = ("generations",)


def make_sampler(spec, dimension: int):
    """A fresh CMA for `spec`: mean at the genome's initial point, unit-cube bounds, spec.seed."""
    from cmaes import CMA
    mean = np.clip(np.asarray(spec.genome.initial(), dtype=float), 0.0, 1.0)
    bounds = np.tile([0.0, 1.0], (dimension, 1))
    return CMA(mean=mean, sigma=spec.sigma, bounds=bounds, seed=spec.seed, population_size=spec.population)


def tell_values(fitnesses: list) -> list[float]:
    """What CMA-ES minimizes: -fitness; a failed candidate (None) is 1 worse than the worst scored."""
    scored = [-f for f in fitnesses if f is not None and math.isfinite(f)]
    if not scored:
        raise UserError("cmaes: every candidate of a generation failed; see the reasons in cmaes.json")
    worst = max(scored) + 1.0
    return [-f if f is not None and math.isfinite(f) else worst for f in fitnesses]


def replay(sampler, history: list) -> None:
    """Ask and tell the saved generations again: the sampler ends in the state it was saved in."""
    for generation in history:
        candidates = generation["candidates"]
        asked = [sampler.ask() for _ in candidates]
        for i, (x, candidate) in enumerate(zip(asked, candidates)):
            if x.tolist() != candidate["x"]:
                raise UserError(f"{STATE_FILE}: generation {generation['generation']} candidate {i} does not replay "
                                "(another cmaes version or a changed merge section); use a new --out")
        sampler.tell(list(zip(asked, tell_values([c["fitness"] for c in candidates]))))


def _identity(spec) -> dict:
    return {k: v for k, v in spec.data.items() if k not in RESUMABLE_CHANGES}


def load_state(out_dir: str, spec) -> list:
    """The saved generations of a run in out_dir ([] for a new run); UserError for another run's state."""
    path = os.path.join(out_dir, STATE_FILE)
    if not os.path.exists(path):
        return []
    try:
        with open(path, encoding="utf-8") as f:
            state = json.load(f)
        history, saved = state["history"], state["merge"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise UserError(f"{path}: damaged ({type(e).__name__}: {e})") from None
    if state.get("version") != STATE_VERSION:
        raise UserError(f"{path}: state version {state.get('version')!r}, expected {STATE_VERSION}")
    if {k: v for k, v in saved.items() if k not in RESUMABLE_CHANGES} != json.loads(json.dumps(_identity(spec))):
        raise UserError(f"{path}: was searched with another merge section; resume with the same one or use a new --out")
    return history


def save_state(out_dir: str, spec, history: list, best: dict | None) -> None:
    state = {"version": STATE_VERSION, "merge": spec.data, "dimension": spec.genome.dimension,
             "history": history, "best": best}
    atomic_write_text(os.path.join(out_dir, STATE_FILE), json.dumps(state, indent=1) + "\n")


def score_in_process(recipes: list[dict], fitness_spec: dict, split: str) -> list[dict]:
    """Each recipe merged in memory and scored here; a failure is recorded, not raised."""
    from foundry.genetics import fitness
    from foundry.genetics.genome import build_model
    results = []
    for recipe in recipes:
        try:
            model, _, cfg = build_model(recipe)
            scores = fitness.score(model, cfg, fitness_spec, split)
            results.append({"status": "scored", "fitness": scores["fitness"], "scores": scores, "reason": ""})
        except Exception as e:       # a plugin that raises fails this candidate; the search goes on
            reason = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"[:300]
            results.append({"status": "failed", "fitness": None, "scores": {}, "reason": reason})
    return results


def _best(history: list) -> dict | None:
    scored = [c for g in history for c in g["candidates"] if c["fitness"] is not None]
    return max(scored, key=lambda c: c["fitness"], default=None)


def run_cmaes(spec, out_dir, pool=None, progress=None, evaluate=None) -> dict:
    """Search spec (genome.MergeSpec) into out_dir; resumes from OUT/cmaes.json. Returns the summary.

    evaluate(recipes, fitness_spec, split) -> [{"status", "fitness", "scores", "reason"}] scores a
    generation (default: through `pool` when given, else score_in_process); progress(row: dict) is
    called after each generation."""
    out_dir = os.fspath(out_dir)
    os.makedirs(out_dir, exist_ok=True)
    genome = spec.genome
    evaluate = evaluate or _pool_evaluator(pool, out_dir)
    history = load_state(out_dir, spec)
    sampler = make_sampler(spec, genome.dimension)
    replay(sampler, history[:spec.generations])
    for generation in range(len(history), spec.generations):
        asked = [sampler.ask() for _ in range(sampler.population_size)]
        recipes = [genome.recipe(x) for x in asked]
        results = evaluate(recipes, spec.fitness, "search")
        fitnesses = [r["fitness"] for r in results]
        sampler.tell(list(zip(asked, tell_values(fitnesses))))
        candidates = [{"id": f"g{generation:04d}-{i:03d}", "x": x.tolist(), "recipe": recipe, **result}
                      for i, (x, recipe, result) in enumerate(zip(asked, recipes, results))]
        history.append({"generation": generation, "sigma": float(sampler._sigma), "candidates": candidates})
        save_state(out_dir, spec, history, _best(history))
        if progress:
            progress(generation_row(history[-1], _best(history)))
    return finish(spec, out_dir, history, evaluate)


def generation_row(generation: dict, best: dict | None) -> dict:
    scored = [c["fitness"] for c in generation["candidates"] if c["fitness"] is not None]
    xs = np.asarray([c["x"] for c in generation["candidates"]])
    return {"generation": generation["generation"], "best": max(scored) if scored else None,
            "mean": float(np.mean(scored)) if scored else None, "best_so_far": best["fitness"] if best else None,
            "diversity": float(xs.std(axis=0).mean()), "sigma": generation["sigma"],
            "failed": len(generation["candidates"]) - len(scored)}


def finish(spec, out_dir: str, history: list, evaluate) -> dict:
    """Re-score the best on the heldout split, merge it into OUT/best, write OUT/cmaes_summary.json."""
    best = _best(history)
    if best is None:
        raise UserError(f"{out_dir}: no candidate was scored")
    if "heldout" not in best:
        result = evaluate([best["recipe"]], spec.fitness, "heldout")[0]     # fitness None: failed, with reason
        best.update(heldout=result["fitness"], heldout_scores=result["scores"], heldout_reason=result["reason"])
        save_state(out_dir, spec, history, best)
    export = os.path.join(out_dir, "best")
    export_best(best["recipe"], export)
    summary = {"mode": "merge", "method": spec.genome.method, "dimension": spec.genome.dimension,
               "generations": len(history), "population": len(history[0]["candidates"]) if history else 0,
               "candidates": sum(len(g["candidates"]) for g in history), "best": best, "export": export,
               "curve": [generation_row(g, None) for g in history]}
    atomic_write_text(os.path.join(out_dir, "cmaes_summary.json"), json.dumps(summary, indent=1) + "\n")
    return summary


def export_best(recipe: dict, folder: str) -> None:
    """The best merge as a normal Foundry checkpoint (foundry.merge: merge.yaml and merge.json lineage)."""
    from foundry.merge import merge
    if not os.path.isdir(folder):
        merge(recipe, folder)


def _pool_evaluator(pool, out_dir: str):
    if pool is None:
        return score_in_process
    raise UserError("cmaes: scoring on a worker pool is not available yet")
