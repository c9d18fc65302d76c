"""Fixtures of the merge tests: tiny Foundry run folders with random weights (a base and
perturbed "fine-tunes"), built in a second, and a helper writing recipes."""
import os

import pytest
import torch
import yaml

from foundry import catalog
from foundry.data import build_tokenizer
from foundry.merge import METHODS, TensorJob
from foundry.merge.method import REQUIRED
from foundry.model.gpt import GPT
from tests.zoo.hf_models import save_foundry_run

TINY = {"n_layer": 3, "n_head": 2, "n_embd": 16, "block_size": 16, "vocab_size": 256}


def foundry_run(folder, seed: int = 0, base=None, scale: float = 0.05, **model) -> str:
    """A run folder with a random GPT (or `base`'s weights plus noise of std `scale`)."""
    cfg = catalog.from_dict({"name": os.path.basename(os.fspath(folder)), "model": {**TINY, **model},
                             "data": {"tokenizer": "byte"}, "budget": {"steps": 1}})
    torch.manual_seed(seed)
    net = GPT(cfg.model)
    if base is not None:
        from safetensors.torch import load_model
        load_model(net, os.path.join(base, "checkpoint", "model.safetensors"))
        with torch.no_grad():
            for p in net.parameters():
                p.add_(torch.randn_like(p) * scale)
    return save_foundry_run(folder, net, cfg, build_tokenizer("byte", ""))


@pytest.fixture(scope="session")
def runs(tmp_path_factory):
    """{"base", "a", "b", "c"}: a base and three perturbed copies of it."""
    root = tmp_path_factory.mktemp("runs")
    base = foundry_run(root / "base", seed=0)
    return {"base": base, **{name: foundry_run(root / name, seed=i + 1, base=base) for i, name in enumerate("abc")}}


def write_recipe(folder, data: dict, name: str = "recipe.yaml") -> str:
    path = os.path.join(os.fspath(folder), name)
    with open(path, "w") as f:
        yaml.safe_dump(data, f)
    return path


def hf_llama(folder, seed: int = 0, base=None, scale: float = 0.02, max_shard_size=None, family: str = "llama") -> str:
    """A tiny random Hugging Face folder (saved by transformers), or `base` plus noise of std `scale`."""
    from tests.zoo.hf_models import load_hf, save_tiny
    if base is None:
        return save_tiny(folder, family, seed=seed, max_shard_size=max_shard_size)
    import shutil
    model = load_hf(base)
    torch.manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * scale)
    kwargs = {"max_shard_size": max_shard_size} if max_shard_size else {}
    model.save_pretrained(folder, **kwargs)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copyfile(os.path.join(base, name), os.path.join(folder, name))
    return os.fspath(folder)


@pytest.fixture(scope="session")
def hf_runs(tmp_path_factory):
    """{"base", "a", "b", "c"}: a tiny Llama folder and three perturbed copies; "c" sharded."""
    root = tmp_path_factory.mktemp("hf")
    base = hf_llama(root / "base", seed=0)
    return {"base": base, "a": hf_llama(root / "a", 1, base), "b": hf_llama(root / "b", 2, base),
            "c": hf_llama(root / "c", 3, base, max_shard_size="60KB")}


def method_recipe(name: str, runs: dict) -> dict:
    """A recipe using `name` on runs {"base", "a", "b", "c"}, every required parameter set (0.5 / true),
    densities 0.6, seed 3."""
    method = METHODS[name]
    fill = lambda spec: {k: (0.5 if p.type is float else True) for k, p in spec.items() if p.default is REQUIRED}
    if method.stacks_layers:
        return {"merge_method": name, "models": [{"model": runs["a"]}]}
    others = ["a", "b", "c"][:(method.max_models or 4) - (1 if method.base else 0)]
    if not method.base:
        others = others[:2]
    models = [{"model": runs[o], "parameters": {**fill(method.per_model), **({"density": 0.6} if "density" in method.per_model else {})}}
              for o in others]
    recipe = {"merge_method": name, "models": models, "parameters": fill(method.shared), "seed": 3}
    if method.base:
        recipe["base_model"] = runs["base"]
    return recipe


def assert_merged_as_its_function(name: str, recipe: dict, merged: dict, read) -> None:
    """Every merged tensor equals the method's per-tensor function on the inputs (read(ref) -> {name: tensor})."""
    method = METHODS[name]
    base = read(recipe["base_model"]) if method.base else None
    inputs = [read(m["model"]) for m in recipe["models"]]
    shared = {k: p.default for k, p in method.shared.items()} | recipe.get("parameters", {})
    per_model = [{k: p.default for k, p in method.per_model.items()} | m.get("parameters", {}) for m in recipe["models"]]
    assert sorted(merged) == sorted(inputs[0])
    for tensor_name, tensor in merged.items():
        job = TensorJob(tensor_name, base[tensor_name] if base else None, [w[tensor_name] for w in inputs],
                        shared, per_model, 3)
        assert torch.equal(tensor, method.run(job).to(tensor.dtype)), tensor_name
