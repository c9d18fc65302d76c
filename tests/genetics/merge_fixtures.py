"""Tiny Foundry runs for the genetics merge tests: a base and two perturbed "fine-tunes" of it
(random weights, byte tokenizer, built in a second with tests/merge's foundry_run)."""
import os

from tests.merge.conftest import foundry_run

BLOCK = 16


def tiny_runs(root) -> dict:
    """{"base", "a", "b"} run folders under root (3 layers, n_embd 16, block_size 16)."""
    root = os.fspath(root)
    base = foundry_run(os.path.join(root, "base"), seed=0, block_size=BLOCK)
    return {"base": base, **{name: foundry_run(os.path.join(root, name), seed=i + 1, base=base, block_size=BLOCK)
                             for i, name in enumerate("ab")}}
