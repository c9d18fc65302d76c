"""Fixtures of the merge tests: tiny Foundry run folders with random weights (a base and
perturbed "fine-tunes"), built in a second, and a helper writing recipes."""
import os

import pytest
import torch
import yaml

from foundry import catalog
from foundry.data import build_tokenizer
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
