"""Recipes and the fusion section: resolution from experts' checkpoints, and one-line errors naming
the key for every kind of bad input; placement of experts over devices (CPU-run: no GPU here)."""
import copy

import pytest
import torch
import yaml

from foundry import catalog
from foundry.config import ConfigError, config_hash, dumps
from foundry.errors import UserError
from foundry.fusion.build import plan_placement, skeleton
from foundry.fusion.recipe import resolve
from foundry.fusion.spec import parse_spec
from tests.fusion.helpers import corpora, two_expert_recipe


@pytest.fixture(scope="module")
def recipe(experts, tmp_path_factory):
    return two_expert_recipe(experts, "llama", corpora(tmp_path_factory.mktemp("corpora")))


def test_resolve_records_each_expert_and_takes_the_base_model_section(recipe):
    cfg = resolve(recipe)
    assert cfg.model_kind == "fusion" and cfg.model.n_embd == 48 and cfg.model.n_layer == 2
    assert cfg.model.block_size == 32 and cfg.model.norm == "rmsnorm" and cfg.data.tokenizer == "byte"
    spec = parse_spec(cfg.fusion)
    assert spec.experts["gpt2"].model.n_embd == 32 and spec.experts["gpt2"].model.position == "learned"
    assert [layer.init for layer in spec.layers] == [1, 1]  # the llama source of each layer
    # the resolved config round-trips through YAML and the catalog, and its hash covers the recipe
    assert catalog.from_dict(yaml.safe_load(dumps(cfg))) == cfg
    other = copy.deepcopy(recipe)
    other["router"] = {"kind": "token"}
    assert config_hash(resolve(other)) != config_hash(cfg)


def _broken(recipe, change):
    bad = copy.deepcopy(recipe)
    change(bad)
    return bad


BAD = {
    "unknown adapter": (lambda r: r["layers"][0].update(adapter="conv"), "fusion.layers[0].adapter.kind: unknown 'conv'"),
    "unknown router": (lambda r: r.update(router={"kind": "hash"}), "fusion.layers[0].router.kind: unknown 'hash'"),
    "unknown expert": (lambda r: r["layers"][1]["sources"][0].update(expert="bert"),
                       "fusion.layers[1].sources[0].expert: unknown 'bert'"),
    "range past the end": (lambda r: r["layers"][0]["sources"][0].update(layer_range=[1, 5]),
                           "fusion.layers[0].sources[0].layer_range"),
    "empty range": (lambda r: r["layers"][0]["sources"][1].update(layer_range=[1, 1]),
                    "fusion.layers[0].sources[1].layer_range"),
    "top_k too large": (lambda r: r.update(router={"kind": "token", "top_k": 3}), "fusion.layers[0].router.top_k"),
    "base not an expert": (lambda r: r.update(base="bert"), "fusion.base"),
    "unknown layer key": (lambda r: r["layers"][0].update(weights=[1, 2]), "fusion.layers[0].weights: unknown key"),
    "unknown top key": (lambda r: r.update(routers={}), "routers: unknown key"),
    "a model section": (lambda r: r.update(model={"n_layer": 2}), "model: comes from the base expert"),
    "unused expert": (lambda r: r["experts"].update(spare=r["experts"]["gpt2"]), "fusion.experts.spare: not a source"),
    "bad mixture weight": (lambda r: r.update(mixture={"a": {"source": "builtin", "weight": 0}}), "fusion.mixture.a"),
    "bad device": (lambda r: r["experts"].update(gpt2={"path": r["experts"]["gpt2"], "device": "tpu"}),
                   "fusion.experts.gpt2.device"),
    "lora": (lambda r: r["train"].update(lora_rank=4), "train.lora_rank: not used with a fused model"),
    "missing expert folder": (lambda r: r["experts"].update(gpt2="/nonexistent/run"), "/nonexistent/run: not a Foundry checkpoint"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_recipes_name_the_key(recipe, case):
    change, message = BAD[case]
    with pytest.raises((ConfigError, UserError)) as info:
        resolve(_broken(recipe, change))
    assert message in str(info.value) and "\n" not in str(info.value)


def test_experts_must_share_a_tokenizer(recipe, tmp_path):
    import json
    import os
    import shutil
    odd = tmp_path / "odd"
    shutil.copytree(os.path.dirname(recipe["experts"]["gpt2"]) + "/gpt2", odd)
    (odd / "checkpoint" / "tokenizer.json").write_text(json.dumps({"kind": "char", "chars": "abc"}))
    with pytest.raises(UserError, match="fusion.experts.gpt2: its tokenizer differs"):
        resolve(_broken(recipe, lambda r: r["experts"].update(gpt2=str(odd))))


def test_placement_spreads_experts_over_gpus_by_size(recipe):
    spec = parse_spec(resolve(recipe).fusion)
    assert plan_placement(spec, "cpu", gpu_count=0) == {"main": "cpu", "gpt2": "cpu", "llama": "cpu"}
    assert plan_placement(spec, "cuda", gpu_count=1) == {"main": "cuda:0", "gpt2": "cuda:0", "llama": "cuda:0"}
    # two GPUs: the main one already holds the embedding and head, so the larger expert goes to cuda:1
    two = plan_placement(spec, "cuda", gpu_count=2)
    assert two == {"main": "cuda:0", "llama": "cuda:1", "gpt2": "cuda:0"}
    spec.experts["gpt2"].device = "cuda:3"  # a fixed device is kept
    assert plan_placement(spec, "cuda:0", gpu_count=4)["gpt2"] == "cuda:3"


def test_tensors_go_to_their_experts_device(recipe):
    model = skeleton(resolve(recipe), torch.device("cpu"))
    model.devices["gpt2"] = torch.device("meta")  # stands in for a second device on a CPU-only machine
    gpt2_path = next(p for p, path in enumerate(model.blocks[0].paths) if path.expert == "gpt2")
    assert model.device_of(f"blocks.0.paths.{gpt2_path}.blocks.0.attn.q_proj.weight") == torch.device("meta")
    assert model.device_of(f"blocks.0.paths.{gpt2_path}.adapter_in.proj.weight") == torch.device("meta")
    assert model.device_of("positions.gpt2.wpe.weight") == torch.device("meta")
    assert model.device_of("blocks.0.router.score.weight") == torch.device("cpu")
    assert model.device_of("lm_head.weight") == torch.device("cpu")
