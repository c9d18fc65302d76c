"""Evolutionary merging: CMA-ES (the `cmaes` library) over a merge genome's per-layer parameters,
each candidate merged in memory and scored by a fitness plugin; resumable after kill -9.

    from foundry.genetics import genome
    spec = genome.parse(yaml.safe_load(open("recipe.yaml"))["merge"], "recipe.yaml: merge")
    summary = run_cmaes(spec, "runs/evo", pool=None, progress=print)
    summary["best"]["recipe"], summary["best"]["fitness"], summary["best"]["heldout"]

The search runs in the unit cube [0, 1]^d (genome.py maps it to each knob's bounds), from the
genome's initial point with step size `sigma`. Each generation: ask the population, make each
candidate an Individual with that mergekit-format recipe, score them on the fitness "search"
split with evolve.score_generation (one `python -m foundry.genetics.worker` trial per candidate on
the worker pool, merged in memory there; in this process when pool is None), tell CMA-ES the
results (it minimizes -fitness; a failed candidate gets a value worse than every scored one of its
generation), then write OUT/cmaes.json atomically. At the end the best candidate by search fitness
is re-scored on the "heldout" split and merged into OUT/best (a normal Foundry checkpoint with
merge.yaml, merge.json and lineage.json); OUT/genetics_summary.json is the summary.

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


def _identity(section: dict) -> dict:
    """What a resumed run must share with the saved one, as JSON reads it back."""
    return json.loads(json.dumps({k: v for k, v in section.items() if k not in RESUMABLE_CHANGES}))


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
    if _identity(saved) != _identity(spec.data):
        raise UserError(f"{path}: was searched with another merge section; resume with the same one or use a new --out")
    return history


def save_state(out_dir: str, spec, history: list, best: dict | None) -> None:
    state = {"version": STATE_VERSION, "merge": spec.data, "dimension": spec.genome.dimension,
             "history": history, "best": best}
    atomic_write_text(os.path.join(out_dir, STATE_FILE), json.dumps(state, indent=1) + "\n")


def _best(history: list) -> dict | None:
    scored = [c for g in history for c in g["candidates"] if c["fitness"] is not None]
    return max(scored, key=lambda c: c["fitness"], default=None)


def run_cmaes(spec, out_dir, pool=None, progress=None, evaluate=None) -> dict:
    """Search spec (genome.MergeSpec) into out_dir, resuming OUT/cmaes.json; returns the summary.

    pool: the worker pool (evolve.open_genetics_pool; None scores in this process). evaluate(
    individuals, fitness_spec, split) fills each Individual's status/fitness/scores/reason in place
    (default: evolve.score_generation on the pool). progress(row) gets each generation's row (the
    saved ones again on a resume), e.g. store.Reporter: the live table and TensorBoard."""
    from foundry.genetics.store import Store
    store = Store(out_dir)
    os.makedirs(store.dir, exist_ok=True)
    genome = spec.genome
    evaluate = evaluate or _pool_evaluator(pool, store.jobs)
    history = load_state(store.dir, spec)
    sampler = make_sampler(spec, genome.dimension)
    replay(sampler, history[:spec.generations])
    for saved in history:
        _report(progress, saved, history[:saved["generation"] + 1])
    for generation in range(len(history), spec.generations):
        asked = [sampler.ask() for _ in range(sampler.population_size)]
        individuals = [_individual(f"g{generation:04d}-{i:03d}", generation, genome.recipe(x))
                       for i, x in enumerate(asked)]
        evaluate(individuals, spec.fitness, "search")
        fitnesses = [ind.fitness if ind.status == "scored" else None for ind in individuals]
        sampler.tell(list(zip(asked, tell_values(fitnesses))))
        candidates = [{"id": ind.id, "generation": generation, "x": x.tolist(), "recipe": ind.merge_recipe,
                       "status": ind.status, "fitness": fitness, "scores": ind.scores, "reason": ind.reason}
                      for x, ind, fitness in zip(asked, individuals, fitnesses)]
        history.append({"generation": generation, "sigma": float(sampler._sigma),   # cmaes keeps sigma private
                        "candidates": candidates})
        save_state(store.dir, spec, history, _best(history))
        _report(progress, history[-1], history)
    return finish(spec, store, history, evaluate)


def _individual(ident: str, generation: int, recipe: dict):
    from foundry.genetics.individual import Individual
    return Individual(ident, generation, parents=[], operator="cmaes", merge_recipe=recipe)


def _report(progress, generation: dict, history: list) -> None:
    if progress:
        progress(generation_row(generation, _best(history)))


def generation_row(generation: dict, best: dict | None) -> dict:
    scored = [c["fitness"] for c in generation["candidates"] if c["fitness"] is not None]
    xs = np.asarray([c["x"] for c in generation["candidates"]])
    return {"generation": generation["generation"], "best": max(scored) if scored else None,
            "mean": float(np.mean(scored)) if scored else None, "best_so_far": best["fitness"] if best else None,
            "diversity": float(xs.std(axis=0).mean()), "sigma": generation["sigma"],
            "failed": len(generation["candidates"]) - len(scored)}


def finish(spec, store, history: list, evaluate) -> dict:
    """Re-score the best on the heldout split, export it to OUT/best, write OUT/genetics_summary.json."""
    best = _best(history)
    if best is None:
        raise UserError(f"{store.dir}: no candidate was scored")
    if "heldout" not in best:
        ind = _individual(best["id"], best["generation"], best["recipe"])
        evaluate([ind], spec.fitness, "heldout")                 # a failure is recorded, with its reason
        best.update(heldout=ind.fitness if ind.status == "scored" else None, heldout_scores=ind.scores,
                    heldout_reason=ind.reason)
        save_state(store.dir, spec, history, best)
    export_best(best, store.best, spec)
    store.clear_jobs()
    summary = {"mode": "merge", "out": store.dir, "method": spec.genome.method, "dimension": spec.genome.dimension,
               "generations": len(history), "population": len(history[0]["candidates"]),
               "scored": sum(c["fitness"] is not None for g in history for c in g["candidates"]),
               "failed": sum(c["fitness"] is None for g in history for c in g["candidates"]),
               "best": best, "export": store.best, "curve": [generation_row(g, None) for g in history]}
    store.write_summary(summary)
    return summary


def export_best(best: dict, folder: str, spec) -> None:
    """The best merge as a normal Foundry checkpoint (foundry.merge's output: checkpoint/, merge.yaml,
    merge.json with the inputs' sha256) plus lineage.json (the candidate, its scores, the search)."""
    import shutil

    from foundry.io import write_json
    from foundry.merge import merge
    if os.path.isdir(folder):
        return
    tmp = folder + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    merge(best["recipe"], tmp)
    write_json(os.path.join(tmp, "lineage.json"), {"best": best["id"], "fitness": best["fitness"],
                                                   "heldout": best.get("heldout"), "operator": "cmaes",
                                                   "x": best["x"], "merge": spec.data})
    os.replace(tmp, folder)


def _pool_evaluator(pool, jobs_dir: str):
    from foundry.genetics.evolve import score_generation

    def evaluate(individuals, fitness_spec, split):
        score_generation(pool, individuals, jobs_dir, fitness_spec, split)
    return evaluate
