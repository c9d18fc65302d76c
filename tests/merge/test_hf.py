"""Merging Hugging Face folders (tiny random Llamas built with transformers, single and sharded
safetensors): every method gives its function's tensors, the output loads in transformers."""
import os

import pytest
import torch

from foundry.errors import UserError
from foundry.merge import METHODS, merge
from foundry.weights.tensors import TensorReader
from tests.merge.conftest import assert_merged_as_its_function, method_recipe
from tests.zoo.hf_models import load_reporting


def hf_weights(folder) -> dict:
    reader = TensorReader.from_folder(os.fspath(folder))
    return {name: reader.get(name) for name in reader.names()}


@pytest.mark.parametrize("name", sorted(METHODS))
def test_every_method_merges_hf_folders_into_one_transformers_loads(name, hf_runs, tmp_path):
    recipe = method_recipe(name, hf_runs)
    summary = merge(recipe, tmp_path / "out", max_shard_bytes=100_000)
    assert summary["format"] == "hf" and len(summary["files"]) > 2          # shards and their index
    assert os.path.isfile(tmp_path / "out" / "model.safetensors.index.json")
    assert_merged_as_its_function(name, recipe, hf_weights(tmp_path / "out"), hf_weights)
    model, problems = load_reporting(tmp_path / "out")
    assert problems == []
    assert torch.isfinite(model(torch.tensor([[1, 2, 3]])).logits).all()
    for file in ("tokenizer.json", "tokenizer_config.json", "generation_config.json", "merge.yaml", "merge.json"):
        assert os.path.isfile(tmp_path / "out" / file), file


def test_mergekit_filters_match_hugging_face_names(hf_runs, tmp_path):
    recipe = {"merge_method": "slerp", "base_model": hf_runs["base"], "models": [{"model": hf_runs["a"]}],
              "parameters": {"t": [{"filter": "self_attn", "value": 0.0}, {"filter": "mlp", "value": 1.0},
                                   {"value": 0.5}]}}
    merge(recipe, tmp_path / "out")
    out, base, a = hf_weights(tmp_path / "out"), hf_weights(hf_runs["base"]), hf_weights(hf_runs["a"])
    assert torch.equal(out["model.layers.1.self_attn.q_proj.weight"], base["model.layers.1.self_attn.q_proj.weight"])
    assert torch.equal(out["model.layers.0.mlp.up_proj.weight"], a["model.layers.0.mlp.up_proj.weight"])


def test_passthrough_stacks_hf_layers_and_updates_config_json(hf_runs, tmp_path):
    recipe = {"merge_method": "passthrough", "dtype": "bfloat16", "slices": [
        {"sources": [{"model": hf_runs["a"], "layer_range": [0, 2]}]},
        {"sources": [{"model": hf_runs["c"], "layer_range": [0, 2]}]}]}
    merge(recipe, tmp_path / "deep")
    model, problems = load_reporting(tmp_path / "deep")
    assert problems == [] and model.config.num_hidden_layers == 4 and model.config.dtype == torch.bfloat16
    out, c = hf_weights(tmp_path / "deep"), hf_weights(hf_runs["c"])
    assert torch.equal(out["model.layers.3.mlp.down_proj.weight"], c["model.layers.1.mlp.down_proj.weight"].bfloat16())
    assert out["lm_head.weight"].dtype == torch.bfloat16


def test_foundry_and_hf_inputs_mix_through_the_zoo_tables(hf_runs, tmp_path):
    from foundry.zoo import import_folder
    imported = import_folder(hf_runs["b"], str(tmp_path / "b-foundry"), log=lambda *a: None)["out"]
    pure = {"merge_method": "ties", "base_model": hf_runs["base"], "parameters": {"weight": 1.0, "density": 0.5},
            "models": [{"model": hf_runs["a"]}, {"model": hf_runs["b"]}]}
    merge(pure, tmp_path / "pure")
    mixed = {**pure, "models": [{"model": hf_runs["a"]}, {"model": imported}]}
    merge(mixed, tmp_path / "mixed")                            # HF base: the Foundry input seen in HF names
    expected = hf_weights(tmp_path / "pure")
    assert all(torch.equal(t, expected[n]) for n, t in hf_weights(tmp_path / "mixed").items())
    assert load_reporting(tmp_path / "mixed")[1] == []
    # a Foundry base: HF inputs in Foundry names, k and v fused (so only elementwise methods agree bitwise)
    base_imported = import_folder(hf_runs["base"], str(tmp_path / "base-foundry"), log=lambda *a: None)["out"]
    pure["merge_method"] = "task_arithmetic"
    merge(pure, tmp_path / "pure-ta")
    expected = hf_weights(tmp_path / "pure-ta")
    merge({**pure, "base_model": base_imported}, tmp_path / "as-foundry")
    import foundry
    model, _, cfg = foundry.load(tmp_path / "as-foundry")
    kv = torch.cat([expected["model.layers.1.self_attn.k_proj.weight"], expected["model.layers.1.self_attn.v_proj.weight"]])
    assert torch.equal(model.blocks[1].attn.kv_proj.weight.detach(), kv)
    assert torch.equal(model.lm_head.weight.detach(), expected["lm_head.weight"])


def test_a_model_the_family_cannot_express_is_refused(hf_runs, runs, tmp_path):
    recipe = {"merge_method": "linear", "models": [{"model": hf_runs["a"], "parameters": {"weight": 1}},
                                                   {"model": runs["a"], "parameters": {"weight": 1}}]}
    with pytest.raises(UserError, match="cannot be merged into a llama model: model.activation='gelu'"):
        merge(recipe, tmp_path / "out")


def test_folders_without_a_tokenizer_merge_as_in_mergekit(hf_runs, tmp_path):
    import shutil
    bare = {}
    for key in ("base", "a"):
        bare[key] = shutil.copytree(hf_runs[key], tmp_path / key, ignore=shutil.ignore_patterns("tokenizer*"))
    recipe = {"merge_method": "linear", "models": [{"model": os.fspath(bare[k]), "parameters": {"weight": 1.0}}
                                                   for k in ("base", "a")]}
    merge(recipe, tmp_path / "out")
    assert not os.path.exists(tmp_path / "out" / "tokenizer.json")
    model, problems = load_reporting(tmp_path / "out")
    assert problems == [] and torch.isfinite(model(torch.tensor([[1, 2]])).logits).all()
    with pytest.raises(UserError, match=r"base: no tokenizer.json; tokenizer_source: base needs"):
        merge({**recipe, "tokenizer_source": "base"}, tmp_path / "out2")
    assert not os.path.exists(tmp_path / "out2")
