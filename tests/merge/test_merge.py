"""Merging Foundry checkpoints end to end: every method through a recipe, gradients and filters,
layer stacking, determinism, lineage, and nothing half-written."""
import hashlib
import json
import os

import pytest
import torch
import yaml
from safetensors.torch import load_file

import foundry
from foundry.errors import UserError
from foundry.merge import METHODS, merge, merge_tensor, prepare, slerp
from tests.merge.conftest import assert_merged_as_its_function, foundry_run, method_recipe


def weights(run) -> dict:
    """A Foundry run's tensors by name, the tied head under the embedding's name."""
    state = load_file(os.path.join(run, "checkpoint", "model.safetensors"))
    if "lm_head.weight" in state and "wte.weight" not in state:
        state["wte.weight"] = state.pop("lm_head.weight")
    return state


@pytest.mark.parametrize("name", sorted(METHODS))
def test_every_method_merges_foundry_checkpoints_as_its_function_does(name, runs, tmp_path):
    recipe = method_recipe(name, runs)
    summary = merge(recipe, tmp_path / "out")
    assert summary["method"] == name and summary["format"] == "foundry"
    assert_merged_as_its_function(name, recipe, weights(tmp_path / "out"), weights)
    model, tokenizer, cfg = foundry.load(tmp_path / "out")
    assert torch.isfinite(model(torch.tensor([tokenizer.encode("merge")]))).all()
    assert cfg.name == "out" and cfg.model.n_layer == 3


def test_gradients_run_across_the_layers_and_filters_pick_tensors(runs, tmp_path):
    recipe = {"merge_method": "slerp", "base_model": runs["base"], "models": [{"model": runs["a"]}],
              "parameters": {"t": [{"filter": "attn", "value": [0.0, 1.0]}, {"value": 0.25}]}}
    merge(recipe, tmp_path / "out")
    out, base, a = weights(tmp_path / "out"), weights(runs["base"]), weights(runs["a"])
    for layer, t in enumerate([0.0, 0.5, 1.0]):                  # 3 layers: t = 0, 1/2, 1 on attention
        name = f"blocks.{layer}.attn.q_proj.weight"
        assert torch.equal(out[name], slerp(base[name], a[name], t))
        name = f"blocks.{layer}.ffn.mlp.c_fc.weight"
        assert torch.equal(out[name], slerp(base[name], a[name], 0.25))
    assert torch.equal(out["wte.weight"], slerp(base["wte.weight"], a["wte.weight"], 0.25))


def test_per_model_parameters_take_precedence_over_top_level_ones(runs, tmp_path):
    recipe = {"merge_method": "task_arithmetic", "base_model": runs["base"], "parameters": {"weight": 0.5},
              "models": [{"model": runs["a"]}, {"model": runs["b"], "parameters": {"weight": [1.0, 0.0]}}]}
    merge(recipe, tmp_path / "out")
    out, base, a, b = (weights(p) for p in (tmp_path / "out", runs["base"], runs["a"], runs["b"]))
    name = "blocks.2.norm1.weight"                                # last layer: b's weight is 0
    assert torch.allclose(out[name], base[name] + 0.5 * (a[name] - base[name]), atol=1e-6)
    name = "blocks.0.norm1.weight"
    assert torch.allclose(out[name], base[name] + 0.5 * (a[name] - base[name]) + (b[name] - base[name]), atol=1e-6)


def test_passthrough_stacks_layers_bitwise_and_writes_the_new_depth(runs, tmp_path):
    recipe = {"merge_method": "passthrough", "slices": [
        {"sources": [{"model": runs["a"], "layer_range": [0, 2]}]},
        {"sources": [{"model": runs["b"], "layer_range": [1, 3]}]}]}
    merge(recipe, tmp_path / "deep")
    out, a, b = weights(tmp_path / "deep"), weights(runs["a"]), weights(runs["b"])
    sources = [(a, 0), (a, 1), (b, 1), (b, 2)]
    assert sum(n.startswith("blocks.") for n in out) == 4 * sum(n.startswith("blocks.0.") for n in a)
    for layer, (source, j) in enumerate(sources):
        for name in [n for n in source if n.startswith(f"blocks.{j}.")]:
            assert torch.equal(out[name.replace(f"blocks.{j}.", f"blocks.{layer}.", 1)], source[name])
    assert torch.equal(out["wte.weight"], a["wte.weight"]) and torch.equal(out["norm_f.weight"], b["norm_f.weight"])
    model, tokenizer, cfg = foundry.load(tmp_path / "deep")
    assert cfg.model.n_layer == 4 and len(model.blocks) == 4


def test_passthrough_keeps_the_per_layer_settings_of_stacked_layers(tmp_path):
    wide = foundry_run(tmp_path / "wide", seed=1)
    narrow = foundry_run(tmp_path / "narrow", seed=2, layers={"1": {"mlp_ratio": 2.0}})
    recipe = {"merge_method": "passthrough", "slices": [
        {"sources": [{"model": wide, "layer_range": [0, 3]}]},
        {"sources": [{"model": narrow, "layer_range": [1, 2]}]}]}
    merge(recipe, tmp_path / "out")
    model, _, cfg = foundry.load(tmp_path / "out")
    assert cfg.model.n_layer == 4 and cfg.model.layers == {"3": {"mlp_ratio": 2.0}}
    assert torch.equal(model.blocks[3].ffn.mlp.c_fc.weight, weights(narrow)["blocks.1.ffn.mlp.c_fc.weight"])


def test_random_methods_are_bitwise_deterministic_in_any_order(runs, tmp_path):
    recipe = method_recipe("dare_ties", runs)
    merge(recipe, tmp_path / "one")
    merge(recipe, tmp_path / "two")
    first = weights(tmp_path / "one")
    assert all(torch.equal(t, weights(tmp_path / "two")[n]) for n, t in first.items())
    _, _, plan = prepare(recipe)
    method = METHODS["dare_ties"]
    for tensor_plan in reversed(plan.tensors):        # any order, any subset (a resumed merge)
        assert torch.equal(merge_tensor(tensor_plan, method, 3), first[tensor_plan.name])
    merge(recipe, tmp_path / "other", seed=4)
    assert not torch.equal(weights(tmp_path / "other")["blocks.0.attn.q_proj.weight"], first["blocks.0.attn.q_proj.weight"])


def test_the_output_records_the_recipe_and_the_inputs_hashes(runs, tmp_path):
    recipe = method_recipe("ties", runs)
    summary = merge(recipe, tmp_path / "out")
    record = json.loads((tmp_path / "out" / "merge.json").read_text())
    for entry in record["inputs"]:
        data = open(os.path.join(entry["path"], "checkpoint", "model.safetensors"), "rb").read()
        assert entry["sha256"] == hashlib.sha256(data).hexdigest()
    assert {e["path"] for e in record["inputs"]} == {os.path.abspath(runs[k]) for k in ("base", "a", "b", "c")}
    assert yaml.safe_load((tmp_path / "out" / "merge.yaml").read_text()) == recipe
    assert record["recipe"] == recipe and record["tensors"] == summary["tensors"] > 0
    assert summary["peak_rss_mb"] > 0 and summary["seconds"] > 0


def test_a_failure_mid_merge_leaves_nothing(runs, tmp_path, monkeypatch):
    import foundry.merge.executor as executor
    calls = []

    def failing(tensor_plan, *args):
        calls.append(tensor_plan.name)
        if len(calls) == 5:
            raise UserError("boom")
        return real(tensor_plan, *args)
    real = executor.merge_tensor
    monkeypatch.setattr(executor, "merge_tensor", failing)
    with pytest.raises(UserError, match="boom"):
        merge(method_recipe("linear", runs), tmp_path / "out")
    assert os.listdir(tmp_path) == []


def test_models_with_and_without_tied_embeddings_merge(runs, tmp_path):
    untied = foundry_run(tmp_path / "untied", seed=5, tie_embeddings=False)
    recipe = {"merge_method": "linear", "models": [{"model": untied, "parameters": {"weight": 1}},
                                                   {"model": runs["a"], "parameters": {"weight": 1}}]}
    merge(recipe, tmp_path / "out")
    out, u, a = weights(tmp_path / "out"), weights(untied), weights(runs["a"])
    assert torch.allclose(out["lm_head.weight"], (u["lm_head.weight"] + a["wte.weight"]) / 2)
    assert torch.allclose(out["wte.weight"], (u["wte.weight"] + a["wte.weight"]) / 2)
    assert not foundry.load(tmp_path / "out")[2].model.tie_embeddings


def test_union_tokenizer_aligns_embeddings_by_token(tmp_path):
    from foundry.data import build_tokenizer
    from tests.zoo.hf_models import save_foundry_run
    from foundry import catalog
    from foundry.model.gpt import GPT
    runs = {}
    for name, text, seed in (("ab", "abcd", 1), ("cd", "cdef", 2)):
        tok = build_tokenizer("char", text)
        cfg = catalog.from_dict({"model": {"n_layer": 1, "n_head": 2, "n_embd": 8, "block_size": 8,
                                           "vocab_size": tok.vocab_size}, "data": {"tokenizer": "char"},
                                 "budget": {"steps": 1}})
        torch.manual_seed(seed)
        runs[name] = save_foundry_run(tmp_path / name, GPT(cfg.model), cfg, tok)
    recipe = {"merge_method": "linear", "tokenizer_source": "union", "models": [
        {"model": runs["ab"], "parameters": {"weight": 1}}, {"model": runs["cd"], "parameters": {"weight": 1}}]}
    merge(recipe, tmp_path / "out")
    model, tokenizer, cfg = foundry.load(tmp_path / "out")
    assert tokenizer.chars == "abcdef" and cfg.model.vocab_size == 6
    ab, cd, out = weights(runs["ab"])["wte.weight"], weights(runs["cd"])["wte.weight"], model.wte.weight.detach()
    assert torch.equal(out[0], ab[0])                                  # "a": only in the first
    assert torch.allclose(out[2], (ab[2] + cd[0]) / 2)                 # "c": in both, by token not by id
    assert torch.equal(out[5], cd[3])                                  # "f": only in the second
    with pytest.raises(UserError, match="tokenizer: not supported"):
        merge({**recipe, "tokenizer": {"source": "union"}}, tmp_path / "x")


def test_a_dry_run_plans_without_writing(runs, tmp_path):
    summary = merge(method_recipe("ties", runs), tmp_path / "out", dry_run=True)
    assert not os.path.exists(tmp_path / "out")
    assert len(summary["plan"]) == summary["tensors"] and summary["plan"][0]["per_model"][0]["density"] == 0.6


def test_tensors_are_read_one_output_tensor_at_a_time(runs, tmp_path, monkeypatch):
    """Streaming: each output tensor's inputs are read just before it is written, never ahead."""
    from foundry.merge import sources
    from foundry.weights.tensors import TensorWriter
    events = []
    read, write = sources.Model.get, TensorWriter.write
    monkeypatch.setattr(sources.Model, "get", lambda self, name: events.append(("read", name)) or read(self, name))
    monkeypatch.setattr(TensorWriter, "write", lambda self, name, t: events.append(("write", name)) or write(self, name, t))
    merge(method_recipe("ties", runs), tmp_path / "out")
    writes = [i for i, (kind, _) in enumerate(events) if kind == "write"]
    assert len(writes) == 23
    for previous, index in zip([-1] + writes, writes):
        reads = events[previous + 1:index]
        assert [kind for kind, _ in reads] == ["read"] * 4                      # base + 3 models
        assert {name for _, name in reads} == {events[index][1]}


def test_dtype_converts_the_inputs_and_out_dtype_the_output(runs, tmp_path):
    recipe = {**method_recipe("linear", runs), "dtype": "float16", "out_dtype": "bfloat16"}
    merge(recipe, tmp_path / "out")
    out, a, b = weights(tmp_path / "out"), weights(runs["a"]), weights(runs["b"])
    name = "blocks.0.attn.q_proj.weight"
    assert out[name].dtype == torch.bfloat16
    expected = ((a[name].half().float() + b[name].half().float()) / 2).bfloat16()   # weights 0.5 and 0.5
    assert torch.equal(out[name], expected)
    model, _, _ = foundry.load(tmp_path / "out")
    assert torch.isfinite(model(torch.tensor([[1, 2]]))).all()
