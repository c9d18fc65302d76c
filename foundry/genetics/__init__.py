"""Weight-space genetics: populations of model weights evolved with crossover, mutation, selection and
elitism on the worker pool, fitness plugins, and evolutionary merge recipes (CMA-ES).

    from foundry.genetics import load_recipe, run_genetics
    summary = run_genetics(load_recipe("ga.yaml"), "runs/ga", workers=2)
    summary["best"]["fitness"], summary["best"]["heldout"], summary["export"]   # OUT/best: a checkpoint
    people = Population.from_checkpoints(["runs/a", "runs/b"], 8, noise=0.01, seed=0, folder="tmp/ind")
    score_generation(None, people.individuals, "tmp/jobs", {"name": "val_bpb"}, "search", people.base)

Files: individual.py (Individual), population.py (starts, diversity), operators.py (OPERATORS,
SELECTIONS, elitism, the 1/5 rule), evolve.py (the loop, score_generation, breed), store.py (the
run folder, table, TensorBoard, export), worker.py (a pool trial: score_individual), recipe.py,
cli.py; fitness.py (FITNESS plugins), genome.py (merge genomes), cmaes_search.py (run_cmaes).
"""
from foundry.genetics.evolve import breed, run_genetics, score_generation
from foundry.genetics.individual import Individual
from foundry.genetics.operators import OPERATORS, SELECTIONS
from foundry.genetics.population import Population
from foundry.genetics.recipe import GARecipe, from_dict as recipe_from_dict, load as load_recipe
from foundry.genetics.worker import score_individual

__all__ = ["GARecipe", "Individual", "OPERATORS", "Population", "SELECTIONS", "breed", "load_recipe", "recipe_from_dict",
           "run_genetics", "score_generation", "score_individual"]
