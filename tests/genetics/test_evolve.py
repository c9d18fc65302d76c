"""The generation loop in this process (workers=0): best fitness never decreases with elitism,
elites carried unchanged, a raising fitness plugin fails its individual and the run goes on,
bounded disk, the export (a checkpoint load_model reads, with lineage), the three starts, and a
resumed run that refuses another recipe."""
import json
import os

import pytest
import torch

from foundry.errors import UserError
from foundry.genetics import fitness
from foundry.genetics.evolve import breed, run_genetics, score_generation
from foundry.genetics.individual import Individual, read_tensors
from foundry.genetics.population import Population, init_sources, initial_population, weight_diversity
from foundry.genetics.recipe import from_dict
from foundry.weights.checkpoint import load_model
from tests.genetics.ga_fixtures import ga_recipe, ga_setup

QUIET = {"log": lambda message: None}


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    return ga_setup(tmp_path_factory.mktemp("ga"))


def run(setup, out, **over):
    return run_genetics(from_dict(ga_recipe(setup, **over), "ga.yaml"), out, workers=0, **QUIET)


def test_best_never_decreases_with_elitism_and_the_best_is_exported(setup, tmp_path):
    summary = run(setup, tmp_path / "out", generations=4)
    bests = [row["best"] for row in summary["curve"]]
    assert all(later >= earlier for earlier, later in zip(bests, bests[1:])), bests
    assert summary["best"]["fitness"] == max(bests) == summary["curve"][-1]["best_so_far"]
    assert isinstance(summary["best"]["heldout"], float) and summary["best"]["heldout"] != summary["best"]["fitness"]
    model, _, cfg = load_model(summary["export"])                     # a normal checkpoint
    exported = read_tensors(os.path.join(summary["export"], "checkpoint", "model.safetensors"))
    assert all(torch.equal(exported[k], v) for k, v in model.state_dict().items() if k in exported)
    lineage = json.load(open(os.path.join(summary["export"], "lineage.json")))
    assert lineage["best"] == summary["best"]["id"] and lineage["ancestors"][0]["id"] == summary["best"]["id"]
    ids = {a["id"] for a in lineage["ancestors"]}
    assert all(p in ids for a in lineage["ancestors"] for p in a["parents"])          # the whole family tree
    assert {a["operator"] for a in lineage["ancestors"]} & {"init", "init+noise"}
    state = json.load(open(tmp_path / "out" / "state.json"))
    kept = os.listdir(tmp_path / "out" / "individuals")
    assert len(kept) <= 4 + 1 and set(kept) <= {os.path.basename(p["weights"]) for p in state["population"]} | \
        {os.path.basename(state["best"]["weights"])}                   # disk stays bounded
    assert not os.path.exists(tmp_path / "out" / "jobs")
    assert os.listdir(tmp_path / "out" / "tb")                         # TensorBoard curves


def test_the_ga_improves_on_a_constructed_problem(setup, tmp_path, monkeypatch):
    """Fitness -|w - target|^2 with the target halfway between the two starting models: crossover
    and mutation must get closer than either parent."""
    a = read_tensors(os.path.join(setup["runs"]["a"], "checkpoint", "model.safetensors"))
    b = read_tensors(os.path.join(setup["runs"]["b"], "checkpoint", "model.safetensors"))
    target = {k: (a[k] + b[k]) / 2 for k in a}

    def distance(model, cfg, spec, split):
        state = model.state_dict()
        return {"fitness": -sum(float((state[k] - v).pow(2).sum()) for k, v in target.items())}

    monkeypatch.setitem(fitness.FITNESS, "distance", fitness.Plugin(distance, lambda spec, where: None, "test"))
    summary = run(setup, tmp_path / "out", population=6, generations=5, fitness={"name": "distance"},
                  operators=[{"name": "uniform", "rate": 0.4}, {"name": "slerp", "rate": 0.4, "jitter": 0.3},
                             {"name": "gaussian", "rate": 0.5, "sigma": 0.01}])
    curve = summary["curve"]
    assert curve[-1]["best"] > 0.35 * curve[0]["best"]    # about a quarter of the parents' squared distance


def test_elites_are_carried_unchanged_and_children_record_their_operators(setup, tmp_path):
    recipe = from_dict(ga_recipe(setup, elite=2), "ga.yaml")
    paths = lambda ident: str(tmp_path / f"{ident}.safetensors")  # noqa: E731
    people = initial_population(init_sources(recipe.init, "init"), 4, 0.02, 0, paths)
    for i, ind in enumerate(people):
        ind.status, ind.fitness = "scored", float(i)
    children = breed(people, recipe, 1, 0.05, paths)
    assert children[0] is people[3] and children[1] is people[2]       # same object: id, weights, fitness
    assert [c.id for c in children[2:]] == ["g0001-000", "g0001-001"]
    for child in children[2:]:
        assert child.generation == 1 and child.parents and child.operator
        if "gaussian" in child.operator:
            assert child.extra["gaussian"]["sigma"] == 0.05 and child.extra["mutated"]
        if "slerp" in child.operator:
            assert len(child.extra["slerp"]["t_layers"]) == 3
    again = breed(people, recipe, 1, 0.05, lambda ident: str(tmp_path / f"again-{ident}.safetensors"))
    for a, b in zip(children[2:], again[2:]):                           # a pure function of (state, seed, generation)
        assert (a.parents, a.operator) == (b.parents, b.operator)
        assert all(torch.equal(x, read_tensors(b.weights)[k]) for k, x in read_tensors(a.weights).items())


def test_a_raising_plugin_marks_its_individual_failed_and_the_run_goes_on(setup, tmp_path, monkeypatch):
    calls = []

    def flaky(model, cfg, spec, split):
        calls.append(split)
        if len(calls) % 3 == 0:
            raise RuntimeError("the evaluator fell over")
        return {"fitness": float(model.wte.weight.double().sum())}

    monkeypatch.setitem(fitness.FITNESS, "flaky", fitness.Plugin(flaky, lambda spec, where: None, "test"))
    summary = run(setup, tmp_path / "out", fitness={"name": "flaky"})
    state = json.load(open(tmp_path / "out" / "state.json"))
    failed = [r for r in state["archive"].values() if r["status"] == "failed"]
    assert failed and all(r["fitness"] is None and "RuntimeError: the evaluator fell over" in r["reason"] for r in failed)
    assert sum(row["failed"] for row in summary["curve"]) >= len(failed) > 0
    assert len(summary["curve"]) == 3 and summary["best"]["fitness"] is not None and os.path.isdir(summary["export"])


def test_a_non_finite_fitness_fails_its_individual(setup, monkeypatch):
    from foundry.genetics.worker import score_individual
    nan = fitness.Plugin(lambda model, cfg, spec, split: {"fitness": float("nan")}, lambda spec, where: None, "test")
    monkeypatch.setitem(fitness.FITNESS, "nan", nan)
    ind = Individual("x", 0, weights=os.path.join(setup["runs"]["a"], "checkpoint", "model.safetensors"))
    result = score_individual(ind, os.path.join(setup["runs"]["a"], "checkpoint"), {"name": "nan"}, "search")
    assert result["status"] == "failed" and "not a finite number" in result["reason"]


def test_population_api_from_a_model_and_from_checkpoints(setup, tmp_path):
    one = Population.from_model(setup["runs"]["base"], 3, noise=0.05, seed=0, folder=str(tmp_path / "one"))
    assert [i.operator for i in one.individuals] == ["init", "init+noise", "init+noise"]
    assert one.base == os.path.join(setup["runs"]["base"], "checkpoint") and one.diversity() > 0
    two = Population.from_checkpoints([setup["runs"]["a"], setup["runs"]["b"]], 3, 0.05, 0, str(tmp_path / "two"))
    assert [i.extra["source"] for i in two.individuals] == [two.base, os.path.join(setup["runs"]["b"], "checkpoint"), two.base]
    score_generation(None, two.individuals, str(tmp_path / "jobs"), {"name": "val_bpb", "source": setup["corpus"],
                                                                     "batches": 1}, "search", two.base)
    assert two.best() is two.ranked()[0] and all(i.status == "scored" for i in two.individuals)


def test_population_from_one_model_with_noise(setup, tmp_path):
    paths = lambda ident: str(tmp_path / f"{ident}.safetensors")  # noqa: E731
    sources = init_sources({"from": [setup["runs"]["base"]], "noise": 0.05}, "init")
    people = initial_population(sources, 3, 0.05, 0, paths)
    original = read_tensors(os.path.join(sources[0], "model.safetensors"))
    first, second = read_tensors(people[0].weights), read_tensors(people[1].weights)
    assert all(torch.equal(first[k], v) for k, v in original.items())            # the model itself
    assert not torch.equal(second["blocks.0.attn.c_proj.weight"], original["blocks.0.attn.c_proj.weight"]) and people[1].extra["noise"] == 0.05
    assert 0 < weight_diversity([p.weights for p in people]) < 0.2
    assert weight_diversity([people[0].weights] * 2) == 0.0


def test_population_from_a_campaign_takes_its_best_trials_of_one_architecture(setup, tmp_path):
    from tests.merge.conftest import foundry_run
    campaign = tmp_path / "campaign"
    for run_name, source, bpb in (("t1", "a", 2.0), ("t2", "b", 1.5)):
        folder = campaign / "gen_0000" / "runs" / run_name
        os.makedirs(folder)
        os.symlink(os.path.join(setup["runs"][source], "checkpoint"), folder / "checkpoint")
        (folder / "summary.json").write_text(json.dumps({"status": "done", "val_bpb": bpb}))
    wide = foundry_run(str(campaign / "gen_0001" / "runs" / "t3"), seed=3, n_embd=32, block_size=16)
    with open(os.path.join(wide, "summary.json"), "w") as f:
        json.dump({"val_bpb": 1.0}, f)                                   # the best, but another shape
    (campaign / "gen_0001" / "runs" / "t4").mkdir()                      # a trial without a checkpoint
    said = []
    sources = init_sources({"campaign": str(campaign)}, "init", 4, said.append)
    assert sources == [os.path.join(wide, "checkpoint")]                 # the best trial's architecture wins
    os.rename(wide, tmp_path / "elsewhere")
    sources = init_sources({"campaign": str(campaign), "top": 2}, "init", 4, said.append)
    assert [os.path.basename(os.path.dirname(s)) for s in sources] == ["t2", "t1"]
    assert "another architecture" in said[0]


def test_sources_of_another_architecture_and_another_recipe_on_resume_are_refused(setup, tmp_path):
    from tests.merge.conftest import foundry_run
    wide = foundry_run(str(tmp_path / "wide"), seed=3, n_embd=32, block_size=16)
    with pytest.raises(UserError, match=r"init.from\[1\]: .* has other tensors"):
        init_sources({"from": [setup["runs"]["a"], wide]}, "init")
    with pytest.raises(UserError, match="is not a Foundry checkpoint"):
        init_sources({"from": [str(tmp_path / "nothing")]}, "init")
    run(setup, tmp_path / "out", generations=1)
    with pytest.raises(UserError, match="another recipe .*seed"):
        run(setup, tmp_path / "out", generations=1, seed=1)
    summary = run(setup, tmp_path / "out", generations=2)             # more generations: resumes
    assert len(summary["curve"]) == 2
