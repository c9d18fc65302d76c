"""Helpers for the GA tests: tiny runs (tests/genetics/merge_fixtures.py), a small corpus, a recipe."""
import os

import yaml

from tests.genetics.merge_fixtures import tiny_runs

WORDS = ["the", "quick", "brown", "fox", "jumps", "over", "lazy", "dog", "and", "cat"]


def corpus(root) -> str:
    path = os.path.join(os.fspath(root), "corpus.txt")
    with open(path, "w") as f:
        f.write("\n".join(" ".join(WORDS[(i * 7 + j * 3) % 10] for j in range(12)) for i in range(300)) + "\n")
    return path


def ga_setup(root) -> dict:
    """{"runs": {base, a, b}, "corpus": path} under root."""
    return {"runs": tiny_runs(os.path.join(os.fspath(root), "runs")), "corpus": corpus(root)}


def ga_recipe(setup: dict, **over) -> dict:
    data = {"population": 4, "generations": 3, "seed": 0, "elite": 1,
            "operators": [{"name": "slerp", "rate": 0.5, "jitter": 0.2},
                          {"name": "gaussian", "rate": 0.8, "sigma": 0.05, "adapt": "one_fifth"}],
            "fitness": {"name": "val_bpb", "source": setup["corpus"], "batches": 1},
            "init": {"from": [setup["runs"]["a"], setup["runs"]["b"]], "noise": 0.02}}
    data.update(over)
    return data


def write_recipe(folder, data: dict, name: str = "ga.yaml") -> str:
    path = os.path.join(os.fspath(folder), name)
    with open(path, "w") as f:
        yaml.safe_dump(data, f)
    return path
