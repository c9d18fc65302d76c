"""Recipes: mergekit's format parsed, parameter values resolved per tensor, and every kind of bad
input refused with one line naming the key or file (the CLI exits 2 and writes nothing)."""
import os

import pytest

from foundry.cli import main
from foundry.errors import UserError
from foundry.merge import merge
from foundry.merge.recipe import evaluate, parse
from tests.merge.conftest import foundry_run, write_recipe


def test_a_mergekit_slerp_recipe_parses():
    recipe = parse({
        "slices": [{"sources": [{"model": "a", "layer_range": [0, 32]}, {"model": "b", "layer_range": [0, 32]}]}],
        "merge_method": "slerp", "base_model": "a", "dtype": "bfloat16",
        "parameters": {"t": [{"filter": "self_attn", "value": [0, 0.5, 0.3, 0.7, 1]},
                             {"filter": "mlp", "value": [1, 0.5, 0.7, 0.3, 0]}, {"value": 0.5}]}})
    assert recipe.referenced_models() == ["a", "b"] and recipe.dtype == "bfloat16" and recipe.warnings == []


def test_values_interpolate_across_layers_and_filters_pick_the_first_match():
    gradient = [0.0, 0.5, 0.3, 0.7, 1.0]
    assert evaluate(gradient, "x", 0.0) == 0.0 and evaluate(gradient, "x", 1.0) == 1.0
    assert evaluate(gradient, "x", 0.125) == pytest.approx(0.25)          # halfway between 0 and 0.5
    assert evaluate(gradient, "x", 0.625) == pytest.approx(0.5)           # halfway between 0.3 and 0.7
    assert evaluate([True, False], "x", 0.4) is True and evaluate([True, False], "x", 1.0) is False
    setting = [{"filter": "attn", "value": 0.1}, {"filter": "mlp", "value": [0.0, 1.0]}, {"value": 0.9}]
    assert evaluate(setting, "blocks.0.attn.q_proj.weight", 0.5) == 0.1
    assert evaluate(setting, "blocks.0.ffn.mlp.c_fc.weight", 0.5) == 0.5
    assert evaluate(setting, "norm_f.weight", 0.0) == 0.9
    assert evaluate([{"filter": "attn", "value": 1}], "wte.weight", 0.0) is None
    assert evaluate("1e-3", "x") == "1e-3"


def test_parameters_of_other_methods_are_ignored_with_a_warning():
    recipe = parse({"merge_method": "linear", "models": [{"model": "a", "parameters": {"weight": 1, "density": 0.5}}]})
    assert recipe.warnings == ["models[0].parameters.density: ignored (not a parameter of linear)"]


@pytest.mark.parametrize("data, message", [
    ({"merge_method": "ties", "models": [{"model": "a"}], "base_model": "b", "colour": 1}, "colour: unknown key"),
    ({"merge_method": "tie", "models": [{"model": "a"}]}, "merge_method: 'tie' is not a method (valid: linear"),
    ({"models": [{"model": "a"}]}, "merge_method: missing"),
    ({"merge_method": "linear"}, "models: give exactly one of models and slices"),
    ({"merge_method": "linear", "models": [{"model": "a", "parameters": {"wieght": 1}}]},
     "models[0].parameters.wieght: unknown parameter"),
    ({"merge_method": "linear", "models": [{"model": "a", "parameters": {"weight": "heavy"}}]},
     "models[0].parameters.weight: expected float, got 'heavy'"),
    ({"merge_method": "ties", "models": [{"model": "a"}], "parameters": {"normalize": 1}},
     "parameters.normalize: expected bool"),
    ({"merge_method": "ties", "models": [{"model": "a", "mdoel": "b"}]}, "models[0].mdoel: unknown key"),
    ({"merge_method": "ties", "models": [{"model": "a"}]}, "base_model: ties needs a base_model"),
    ({"merge_method": "slerp", "base_model": "a", "models": [{"model": "b"}, {"model": "c"}]},
     "slerp merges 2 models (base included), got 3"),
    ({"merge_method": "linear", "models": [{"model": "a"}], "dtype": "float8"}, "dtype: 'float8' is not a dtype"),
    ({"merge_method": "passthrough", "slices": [{"sources": [{"model": "a", "layer_range": [3, 1]}]}]},
     "slices[0].sources[0].layer_range: expected [start, end)"),
    ({"merge_method": "slerp", "base_model": "a", "slices": [{"sources": [
        {"model": "a", "layer_range": [0, 2]}, {"model": "b", "layer_range": [0, 3]}]}]}, "the layer ranges differ"),
    ({"merge_method": "ties", "base_model": "a", "modules": {}}, "modules: not supported"),
    ({"merge_method": "linear", "models": [{"model": "a+lora"}]}, "model+LoRA references are not supported"),
    ({"merge_method": "dare_ties", "base_model": "a", "models": [{"model": "b"}],
      "parameters": {"rescale_mode": "l2"}}, "'l2' is not one of l1, density"),
    ({"merge_method": "linear", "models": [{"model": "a", "parameters": {"weight": [{"filter": 3, "value": 1}]}}]},
     "filter: expected a name substring"),
])
def test_bad_recipes_are_one_line_errors_naming_the_key(data, message):
    with pytest.raises(UserError) as error:
        parse(data, "r.yaml")
    assert str(error.value).startswith("r.yaml: ") and message in str(error.value) and "\n" not in str(error.value)


def test_what_the_models_lack_is_an_error_naming_the_model_or_tensor(runs, tmp_path):
    other_shape = foundry_run(tmp_path / "wide", n_embd=32)
    cases = [
        ({"merge_method": "ties", "base_model": runs["base"], "models": [{"model": runs["a"]}]},
         "missing parameter 'weight'"),
        ({"merge_method": "linear", "models": [{"model": str(tmp_path / "nowhere"), "parameters": {"weight": 1}}]},
         "nowhere: no such model folder"),
        ({"merge_method": "linear", "models": [{"model": runs["a"], "parameters": {"weight": 1}},
                                               {"model": other_shape, "parameters": {"weight": 1}}]},
         "differ in model.n_embd (32 vs 16)"),
        ({"merge_method": "passthrough", "slices": [{"sources": [{"model": runs["a"], "layer_range": [0, 5]}]}]},
         "layer_range: [0, 5] is beyond"),
        ({"merge_method": "linear", "models": [{"model": str(tmp_path), "parameters": {"weight": 1}}]},
         "neither a Foundry checkpoint"),
    ]
    for data, message in cases:
        with pytest.raises(UserError, match=message.replace("[", r"\[").replace("]", r"\]").replace("(", r"\(").replace(")", r"\)")):
            merge(data, tmp_path / "out")
        assert not os.path.exists(tmp_path / "out")


def test_the_cli_exits_2_with_one_line_and_writes_nothing(runs, tmp_path, capsys):
    path = write_recipe(tmp_path, {"merge_method": "ties", "base_model": runs["base"], "models": [{"model": runs["a"]}]})
    assert main(["merge", path, "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("foundry merge: error: ") and "missing parameter 'weight'" in err and "\n" not in err
    assert not os.path.exists(tmp_path / "out")
    assert main(["merge", str(tmp_path / "absent.yaml"), "--out", str(tmp_path / "out")]) == 2
    assert "absent.yaml: cannot read" in capsys.readouterr().err
