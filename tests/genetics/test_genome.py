"""Merge genomes: dimension, the vector -> recipe map (bounds, per-layer gradients, filters), the
in-memory merge against foundry.merge's own output, and the `merge:` section's errors."""
import pytest
import torch

import foundry
from foundry.errors import UserError
from foundry.genetics import genome as genomes
from foundry.genetics.genome import build_model, parse
from foundry.merge import merge, prepare
from tests.genetics.merge_fixtures import tiny_runs

N_LAYER = 3


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    return tiny_runs(tmp_path_factory.mktemp("genome-runs"))


def section(runs, **over):
    data = {"method": "ties", "base_model": runs["base"], "models": [runs["a"], runs["b"]],
            "parameters": {"weight": {"low": 0.0, "high": 2.0}, "density": {"layers": 1, "filters": ["attn", "mlp"]}},
            "fixed": {"normalize": False}, "generations": 3, "fitness": {"name": "val_bpb"}}
    return {**data, **over}


def test_dimension_counts_models_layers_and_filters(runs):
    spec = parse(section(runs))
    # weight: 2 models x 3 layers; density: 2 models x (2 filters + default) x 1
    assert spec.genome.dimension == 2 * N_LAYER + 2 * 3
    slerp = parse({"method": "slerp", "base_model": runs["base"], "models": [runs["a"]],
                   "parameters": {"t": {"layers": 2}}, "fitness": {"name": "val_bpb"}})
    assert slerp.genome.dimension == 2 and slerp.genome.initial() == [0.5, 0.5]
    assert spec.generations == 3 and spec.sigma == 0.25 and spec.seed == 0 and spec.population is None


def test_recipe_maps_the_unit_cube_to_the_bounds(runs):
    genome = parse(section(runs)).genome
    x = [0.0, 0.5, 1.0, 2.0, -1.0, 0.25] + [0.0, 1.0, 0.5, 0.2, 0.4, 0.6]
    recipe = genome.recipe(x)
    a, b = (m["parameters"] for m in recipe["models"])
    assert a["weight"] == [0.0, 1.0, 2.0]
    assert b["weight"] == [2.0, 0.0, 0.5]                       # clipped to [0, 1] first
    low, high = genomes.DEFAULT_BOUNDS["density"]
    assert a["density"] == [{"filter": "attn", "value": low}, {"filter": "mlp", "value": high},
                            {"value": low + 0.5 * (high - low)}]
    assert recipe["parameters"] == {"normalize": False} and recipe["base_model"] == runs["base"]
    with pytest.raises(UserError, match="expected 12 numbers, got 2"):
        genome.recipe([0.5, 0.5])


def test_per_layer_values_reach_each_layer(runs):
    genome = parse(section(runs)).genome
    x = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6] + [0.5] * 6
    _, _, plan = prepare(genome.recipe(x))
    for tensor in plan.tensors:
        if tensor.name.startswith("blocks."):
            layer = int(tensor.name.split(".")[1])
            assert [p["weight"] for p in tensor.per_model] == pytest.approx([2 * x[layer], 2 * x[3 + layer]])
        if ".attn." in tensor.name or ".mlp." in tensor.name:
            low, high = genomes.DEFAULT_BOUNDS["density"]
            assert tensor.per_model[0]["density"] == pytest.approx(low + 0.5 * (high - low))


def test_initial_point_is_each_knobs_init(runs):
    spec = parse(section(runs, parameters={"weight": {"low": 0.0, "high": 2.0, "init": 1.5, "layers": 1}}))
    assert spec.genome.initial() == [0.75, 0.75]
    assert spec.genome.recipe(spec.genome.initial())["models"][0]["parameters"]["weight"] == 1.5


@pytest.mark.parametrize("method, parameters", [
    ("ties", {"weight": {}, "density": {"layers": 2}}),
    ("linear", {"weight": {"filters": ["wte"]}}),
    ("slerp", {"t": {}}),
    ("dare_ties", {"weight": {}, "density": {}}),
])
def test_build_model_equals_the_merge_on_disk(runs, tmp_path, method, parameters):
    models = [runs["a"]] if method == "slerp" else [runs["a"], runs["b"]]
    base = None if method == "linear" else runs["base"]
    genome = parse({"method": method, "base_model": base, "models": models, "parameters": parameters,
                    "fitness": {"name": "val_bpb"}, "seed": 1}).genome
    x = [0.1 + 0.8 * i / max(1, genome.dimension - 1) for i in range(genome.dimension)]
    recipe = genome.recipe(x)
    model, tokenizer, cfg = build_model(recipe)
    merge(recipe, tmp_path / "out")
    saved, _, saved_cfg = foundry.load(tmp_path / "out")
    assert not model.training and model.tokenizer is tokenizer and cfg.model == saved_cfg.model
    mine, theirs = model.state_dict(), saved.state_dict()
    assert mine.keys() == theirs.keys()
    for name in mine:
        assert torch.equal(mine[name], theirs[name]), name
    ids = torch.tensor([tokenizer.encode("to be or not")])
    assert torch.equal(model(ids), saved(ids))


@pytest.mark.parametrize("change, message", [
    ({"method": "nope"}, "merge.method: 'nope' is not a merge method (valid: linear, slerp"),
    ({"models": []}, "merge.models: expected a list of model folders"),
    ({"models": ["x", "x"]}, "merge.models: a model is listed twice"),
    ({"models": ["/no/such/run"]}, "merge.models[0]: /no/such/run: no such model folder"),
    ({"parameters": {}}, "merge.parameters: expected a mapping of parameter -> bounds"),
    ({"parameters": {"t": {}}}, "merge.parameters.t: not a parameter of ties (its parameters: normalize"),
    ({"parameters": {"normalize": {}}}, "merge.parameters.normalize: a bool parameter cannot be searched"),
    ({"parameters": {"weight": {"low": 1, "high": 1}}}, "merge.parameters.weight: expected low < high"),
    ({"parameters": {"weight": {"low": "a"}}}, "merge.parameters.weight.low: expected a number"),
    ({"parameters": {"weight": {"layers": 0}}}, "merge.parameters.weight.layers: expected an integer >= 1"),
    ({"parameters": {"weight": {"filters": "attn"}}}, "merge.parameters.weight.filters: expected a list"),
    ({"parameters": {"weight": {"init": 3}}}, "merge.parameters.weight.init: 3.0 is outside [0.0, 1.0]"),
    ({"parameters": {"weight": {"step": 3}}}, "merge.parameters.weight.step: unknown key"),
    ({"base_model": None}, "base_model: ties needs a base_model"),
    ({"fixed": {"normalize": "yes"}}, "parameters.normalize: expected bool"),
    ({"fitness": {"name": "nope"}}, "merge.fitness.name: 'nope' is not a fitness plugin"),
    ({"sigma": 2}, "merge.sigma: expected a step size in (0, 1]"),
    ({"population": 1}, "merge.population: expected an integer >= 2"),
    ({"generations": 0}, "merge.generations: expected an integer >= 1"),
    ({"seed": -1}, "merge.seed: expected an integer >= 0"),
    ({"popsize": 8}, "merge.popsize: unknown key (valid: method"),
])
def test_bad_sections_are_one_line_errors(runs, change, message):
    with pytest.raises(UserError) as e:
        parse(section(runs, **change), "merge")
    assert message in str(e.value) and "\n" not in str(e.value)


def test_a_parameter_without_a_default_range_needs_bounds(runs, monkeypatch):
    monkeypatch.delitem(genomes.DEFAULT_BOUNDS, "lambda")
    with pytest.raises(UserError, match="merge.parameters.lambda: lambda has no default range: give low and high"):
        parse(section(runs, parameters={"lambda": {}}), "merge")
    spec = parse(section(runs, parameters={"lambda": {"low": 0.5, "high": 1.5, "layers": 1}}), "merge")
    assert spec.genome.recipe([1.0])["parameters"]["lambda"] == 1.5


def test_a_section_that_is_not_a_mapping():
    with pytest.raises(UserError, match="recipe.yaml: merge: expected a mapping"):
        parse([1], "recipe.yaml: merge")
