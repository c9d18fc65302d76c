"""Tiny trained runs on Tiny Shakespeare (char tokenizer) for the distillation and pruning tests:
a teacher, a student config, and helpers. Module-scoped fixtures build each run once."""
import os

from foundry import catalog
from foundry.training.loop import train


def shakespeare_config(shared_data: str, steps: int = 30, **train_keys) -> "catalog.Config":
    """A small char-level config; `model` and other sections through `sections`."""
    sections = train_keys.pop("sections", {})
    data = {"name": "tiny_char",
            "model": {"n_layer": 2, "n_head": 4, "n_embd": 32, "block_size": 16, "norm": "layernorm",
                      "position": "learned", **sections.get("model", {})},
            "train": {"batch_size": 4, "lr": 3e-3, "warmup_steps": 2, "seed": 1, **train_keys},
            "data": {"source": os.path.join(shared_data, "tinyshakespeare.txt"), "tokenizer": "char"},
            "budget": {"steps": steps}, "eval": {"interval": 1000, "bytes": 2048}}
    return catalog.from_dict(data)


def trained_run(folder, shared_data: str, steps: int = 30, **train_keys) -> str:
    """Train a shakespeare_config into `folder` (once) and return the folder."""
    folder = str(folder)
    if not os.path.exists(os.path.join(folder, "summary.json")):
        train(shakespeare_config(shared_data, steps, **train_keys), folder, log=lambda *a: None)
    return folder
