"""The generation loop of `foundry genetics`: score on the worker pool, select, breed, save; resumable.

    from foundry.genetics import load_recipe, run_genetics
    summary = run_genetics(load_recipe("ga.yaml"), "runs/ga", backend="local", workers=2)
    score_generation(pool, individuals, jobs_dir, fitness_spec, "search", base)   # also CMA-ES's path
    children = breed(population, recipe, generation, sigma, path_of)              # a pure function

Each generation: the unscored individuals are scored on the pool, a share of them per trial (`python
-m foundry.genetics.worker JOB.json --out DIR`, a local process or a Ray task through
foundry.runner.backends; one share per worker by default, `per_trial` to set it), or with
workers=0 in this process; the state is saved after each result. Then the curve
row (best, mean, diversity, sigma, failed) goes to the live table and TensorBoard, the 1/5 rule
adapts sigma, and the next generation is bred: the `elite` best unchanged (not re-scored), the
rest each from parents chosen by the selection, by one crossover (with its rate; else a copy of
one parent) and then each mutation (with its rate). A copy that no mutation touched shares its
parent's weights and fitness. The new population is saved (atomically) before anything that is no
longer part of it is deleted.

Determinism and crash safety: generation g's random numbers come only from (seed, g) (selection,
operator choices) and (seed, g, child index) (tensor noise), and scoring is deterministic, so the
next generation is a function of the saved state: kill -9 at any moment, run the same command
again, and it continues with bitwise the same individuals as an uninterrupted run. At the end the
best individual (by search fitness) is re-scored on the held-out split and exported to OUT/best.
"""
from __future__ import annotations

import os
import shutil
import sys
import time

import numpy as np
import torch

from foundry.errors import UserError
from foundry.genetics.individual import Individual, read_tensors, write_tensors
from foundry.genetics.operators import OPERATORS, SELECTIONS, Context, elites, layer_of, one_fifth_update
from foundry.genetics.population import initial_population, init_sources, seed_of, weight_diversity
from foundry.genetics.store import Reporter, Store, curve_row, lineage
from foundry.io import write_json

WORKER_COMMAND = [sys.executable, "-m", "foundry.genetics.worker"]
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def apply_result(individual: Individual, result: dict) -> Individual:
    individual.status, individual.fitness = result["status"], result["fitness"]
    individual.scores, individual.reason = dict(result.get("scores") or {}), result.get("reason", "")
    return individual


def _trial_results(result, ids: list) -> dict:
    """{id: score_individual's dict} from a pool TrialResult; a trial that died fails all its individuals."""
    summary = result.summary or {}
    found = summary.get("results") or {}
    reason = summary.get("error") or result.reason or "no result"
    return {ident: found.get(ident) or {"status": "failed", "fitness": None, "scores": {}, "reason": reason}
            for ident in ids}


def shares(individuals: list, workers: int, per_trial: int | None) -> list:
    """Consecutive shares of the individuals, one trial each: per_trial of them, else one share a worker."""
    size = per_trial or max(1, -(-len(individuals) // max(1, workers)))
    return [individuals[i:i + size] for i in range(0, len(individuals), size)]


def score_generation(pool, individuals: list, jobs_dir: str, fitness_spec: dict, split: str, base: str | None = None,
                     on_result=None, per_trial: int | None = None, poll_s: float = 0.1) -> list:
    """Score every individual with status "new" (in place) on the pool, in shares of per_trial
    individuals a trial (default: one share per worker), or in this process when pool is None.
    on_result(individual, result) after each; a failure marks that individual failed."""
    from foundry.genetics.worker import score_individual
    todo = [ind for ind in individuals if ind.status == "new"]
    if pool is None:
        for ind in todo:
            result = score_individual(ind, base, fitness_spec, split)
            apply_result(ind, result)
            if on_result:
                on_result(ind, result)
        return individuals
    from foundry.runner.pool import TrialSpec
    waiting = {}
    for share in shares(todo, len(pool.workers), per_trial):
        trial_id = f"{share[0].id}-{split}-{len(share)}"
        folder = os.path.join(jobs_dir, trial_id)
        os.makedirs(folder, exist_ok=True)
        job = os.path.join(folder, "job.json")
        write_json(job, {"individuals": [ind.to_dict() for ind in share], "base": base, "fitness": fitness_spec,
                         "split": split})
        pool.submit(TrialSpec(trial_id, job, folder))
        waiting[trial_id] = share
    while waiting:
        for event in pool.poll():
            if event.result is None or event.spec.trial_id not in waiting:
                continue
            share = waiting.pop(event.spec.trial_id)
            results = _trial_results(event.result, [ind.id for ind in share])
            for ind in share:
                result = {**results[ind.id], "wall_s": event.result.wall_s, "worker": event.result.worker}
                apply_result(ind, result)
                if on_result:
                    on_result(ind, result)
            if all(ind.status == "scored" for ind in share):
                shutil.rmtree(event.spec.out_dir, ignore_errors=True)   # failed ones keep their log
        if waiting:
            time.sleep(poll_s)
    return individuals


def _pick(rng, options: list):
    """One of `options` by their rates (None when the draw falls past them)."""
    u, edge = rng.random(), 0.0
    for option in options:
        edge += option["rate"]
        if u < edge:
            return option
    return None


def breed(population: list, recipe, generation: int, sigma: float | None, path_of) -> list:
    """Generation `generation` from the scored `population`: elites, then children."""
    scored = [ind for ind in population if ind.status == "scored"]
    if not scored:
        reasons = [ind.reason for ind in population if ind.reason]
        raise UserError(f"generation {generation - 1}: every individual failed"
                        + (f" (first: {reasons[0]})" if reasons else ""))
    rng = np.random.default_rng(seed_of(recipe.seed, generation))
    selection = SELECTIONS[recipe.selection["name"]]
    children = elites(population, recipe.elite)
    n_layer = None
    for index in range(recipe.population - len(children)):
        crossover = _pick(rng, recipe.crossovers())
        parents = [selection.fn(scored, rng, recipe.selection)]
        if crossover:
            second = selection.fn(scored, rng, recipe.selection)
            for _ in range(3):   # another parent than the first when there is one
                if second is not parents[0] or len(scored) < 2:
                    break
                second = selection.fn(scored, rng, recipe.selection)
            parents.append(second)
        mutations = [m for m in recipe.mutations() if rng.random() < m["rate"]]
        ident = f"g{generation:04d}-{index:03d}"
        names = [parent.id for parent in parents]
        if not crossover and not mutations:   # a copy: same weights, same (deterministic) fitness
            first = parents[0]
            extra = {"copy_of": first.id, **({"sigma": first.extra["sigma"]} if "sigma" in first.extra else {})}
            children.append(Individual(ident, generation, names, "copy", first.weights, None, first.fitness,
                                       dict(first.scores), "scored", "", extra))
            continue
        tensors = [read_tensors(parent.weights) for parent in parents]
        if n_layer is None:
            n_layer = 1 + max((layer_of(k) for k in tensors[0] if layer_of(k) is not None), default=0)
        ctx = Context(torch.Generator().manual_seed(seed_of(recipe.seed, generation, index)), n_layer, sigma,
                      parents[0].extra.get("sigma"))
        child, extra, ops = tensors[0], {"parent_fitness": max(p.fitness for p in parents)}, []
        if crossover:
            child, record = OPERATORS[crossover["name"]].fn(tensors[0], tensors[1], ctx, crossover)
            extra[crossover["name"]], ops = record, [crossover["name"]]
        for mutation in mutations:
            child, record = OPERATORS[mutation["name"]].fn(child, None, ctx, mutation)
            extra[mutation["name"]], ops = record, ops + [mutation["name"]]
            extra["sigma"], extra["mutated"] = record.get("sigma"), True
        write_tensors(child, path_of(ident))
        children.append(Individual(ident, generation, names, "+".join(ops), path_of(ident), extra=extra))
    return children


def success_rate(population: list) -> float | None:
    """Share of this generation's mutated children that beat their better parent (None: none scored)."""
    mutated = [ind for ind in population if ind.extra.get("mutated") and ind.status != "new"]
    if not mutated:
        return None
    return sum(ind.status == "scored" and ind.fitness > ind.extra["parent_fitness"] for ind in mutated) / len(mutated)


def initial_sigma(recipe) -> float | None:
    rules = [m for m in recipe.mutations() if m.get("adapt") == "one_fifth"]
    return rules[0]["sigma"] if rules else None


def open_genetics_pool(backend: str, workers, out_dir: str, timeout_s: float | None, address: str | None = None):
    """The pool the candidates are scored on (None with workers=0: in this process)."""
    if workers == 0:
        if backend == "ray":
            raise UserError("--workers 0 (score in this process) works only with --backend local")
        return None
    from foundry.runner.backends import open_pool, pool_namespace
    return open_pool(backend, workers, address=address, timeout_s=timeout_s, cwd=REPO_ROOT,
                     command=WORKER_COMMAND, namespace=pool_namespace(out_dir))


def run_genetics(recipe, out_dir, backend: str = "local", workers="auto", pool=None, address: str | None = None,
                 timeout_s: float | None = 3600, per_trial: int | None = None, progress=None, log=None) -> dict:
    """Evolve `recipe` (recipe.GARecipe) into out_dir, resuming its saved state; the summary dict."""
    log = log or (lambda message: print(message, file=sys.stderr))
    store = Store(out_dir)
    state = store.load(recipe.identity())
    if state is None:   # every source checked before anything is written
        sources = init_sources(recipe.init, f"{recipe.where}: init", recipe.population, log)
    else:
        log(f"genetics: resuming {store.dir} at generation {state['generation']}")
    owned = pool is None
    if owned:
        pool = open_genetics_pool(backend, workers, store.dir, timeout_s, address)
    reporter = progress or Reporter(store.tb, history=state["history"] if state else [])
    try:
        if state is None:
            people = initial_population(sources, recipe.population, recipe.init["noise"], recipe.seed,
                                        store.weights_path)
            state = {"recipe": recipe.identity(), "base": sources[0], "generation": 0,
                     "population": [p.to_dict() for p in people], "sigma": initial_sigma(recipe), "history": [],
                     "archive": {}, "best": None}
            store.save(state)
        store.prune(_kept(state))
        while True:
            population = _generation(state, store, recipe, pool, reporter, per_trial)
            generation = state["generation"]
            if generation + 1 >= recipe.generations:
                break
            children = breed(population, recipe, generation + 1, state["sigma"], store.weights_path)
            state.update(generation=generation + 1, population=[c.to_dict() for c in children])
            store.save(state)
            store.prune(_kept(state))
        return _finish(state, store, recipe, pool, log)
    finally:
        if owned and pool is not None:
            pool.close()
        if not progress:
            reporter.close()


def _kept(state: dict) -> list:
    return [p["weights"] for p in state["population"]] + ([state["best"]["weights"]] if state["best"] else [])


def _generation(state: dict, store: Store, recipe, pool, reporter, per_trial: int | None) -> list:
    """Score generation state["generation"], then record its row (once) and adapt sigma."""
    population = [Individual.from_dict(d) for d in state["population"]]
    generation = state["generation"]

    def saved(ind, result):
        state["population"] = [p.to_dict() for p in population]
        store.save(state)
        if hasattr(reporter, "status"):   # a plain progress(row) callable has none
            reporter.status(generation, population)

    score_generation(pool, population, store.jobs, recipe.fitness, "search", state["base"], on_result=saved,
                     per_trial=per_trial)
    if len(state["history"]) > generation:
        return population
    for ind in population:
        state["archive"][ind.id] = ind.record()
    best = max([ind for ind in population if ind.status == "scored"], key=lambda i: i.fitness, default=None)
    if best and (state["best"] is None or best.fitness > state["best"]["fitness"]):
        state["best"] = best.to_dict()
    rate = success_rate(population)
    if state["sigma"] is not None and rate is not None:
        rule = next(m for m in recipe.mutations() if m.get("adapt") == "one_fifth")
        state["sigma"] = one_fifth_update(state["sigma"], rate, low=rule["min_sigma"], high=rule["max_sigma"])
    row = curve_row(generation, population, state["best"], weight_diversity([p.weights for p in population]),
                    state["sigma"], rate)
    state["history"].append(row)
    store.save(state)
    reporter(row)
    return population


def _finish(state: dict, store: Store, recipe, pool, log) -> dict:
    best = state["best"]
    if best is None:
        raise UserError(f"{store.dir}: no individual was scored")
    if "heldout" not in best:
        ind = Individual.from_dict({k: v for k, v in best.items() if k in Individual.__dataclass_fields__})
        ind.status = "new"
        score_generation(pool, [ind], store.jobs, recipe.fitness, "heldout", state["base"])
        if ind.status != "scored":
            raise UserError(f"the best individual {best['id']} failed on the heldout split: {ind.reason}")
        best["heldout"], best["heldout_scores"] = ind.fitness, ind.scores
        store.save(state)
    export = store.export(best, state["base"], lineage(state["archive"], best["id"]))
    store.clear_jobs()
    summary = {"mode": "ga", "out": store.dir, "generations": len(state["history"]), "population": recipe.population,
               "scored": sum(r["scored"] for r in state["history"]), "failed": sum(r["failed"] for r in state["history"]),
               "best": best, "export": export, "curve": state["history"]}
    store.write_summary(summary)
    log(f"genetics: best {best['id']} search fitness {best['fitness']:.6g}, heldout {best['heldout']:.6g}; "
        f"exported to {export}")
    return summary
