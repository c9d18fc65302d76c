"""The perplexity curriculum: a reference model scores documents; early batches hold the ones it finds easy.

    python -m pytest tests/training/test_reference.py -q
"""
import json

import numpy as np
import pytest

import foundry
from foundry import catalog
from foundry.errors import UserError
from foundry.mutate import apply
from foundry.training.objectives import NextToken
from foundry.training.reference import Reference
from tests.conftest import tiny_overrides


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory):
    """A tiny model trained on 'abab...' only: it finds alternating a/b text predictable, other letters not."""
    folder = tmp_path_factory.mktemp("reference")
    (folder / "ab.txt").write_text("ab" * 20000)
    (folder / "cfg.yaml").write_text("name: ab\n")
    cfg = foundry.load_config(folder / "cfg.yaml", tiny_overrides(str(folder / "ab.txt"), steps=30) + ["train.lr=1e-2"])
    foundry.train(cfg, folder / "run")
    return str(folder / "run")


@pytest.fixture
def mixed(tmp_path):
    """Equal-length documents: half alternate a and b, half are random letters c..j."""
    rng = np.random.default_rng(0)
    docs = [("ab" * 150) if i % 2 else "".join(rng.choice(list("cdefghij"), 300)) for i in range(80)]
    path = tmp_path / "mixed.jsonl"
    path.write_text("\n".join(json.dumps({"text": d}) for d in docs) + "\n")
    return str(path), docs


def test_reference_scores_the_easy_documents_lower(reference_run, mixed):
    _, docs = mixed
    scores = Reference(reference_run).score(docs)
    easy = [s for s, d in zip(scores, docs) if d.startswith("ab")]
    hard = [s for s, d in zip(scores, docs) if not d.startswith("ab")]
    assert max(easy) < min(hard)
    assert Reference(reference_run).identity == Reference(reference_run).identity


def test_perplexity_curriculum_puts_easy_documents_in_early_batches(reference_run, mixed):
    source, _ = mixed
    cfg = catalog.from_dict({"data": {"source": source, "val_fraction": 0.05,
                                      "curriculum": {"by": "perplexity", "reference": reference_run}},
                             "model": {"block_size": 16, "n_layer": 1, "n_embd": 32, "n_head": 2},
                             "train": {"batch_size": 64}, "budget": {"steps": 100}})
    objective = NextToken(cfg, "cpu")
    rng = np.random.default_rng(1)
    objective.progress = 0.0
    early = "".join(bytes(objective.batch(rng)[0].flatten().tolist()).decode() for _ in range(4))
    objective.progress = 1.0
    late = "".join(bytes(objective.batch(rng)[0].flatten().tolist()).decode() for _ in range(4))
    assert set(early) <= set("ab\n")                     # only the documents the reference finds easy
    assert set("cdefghij") & set(late)                   # after the ramp, everything
    plain = NextToken(apply(cfg, "curriculum", "none"), "cpu")
    plain.progress = 0.0
    assert set("cdefghij") & set(bytes(plain.batch(rng)[0].flatten().tolist()).decode())


def test_perplexity_needs_a_checkpoint(tmp_path):
    with pytest.raises(catalog.ConfigError, match="needs a reference model"):
        catalog.from_dict({"data": {"curriculum": {"by": "perplexity"}}, "budget": {"steps": 1}})
    with pytest.raises(UserError, match="not a Foundry checkpoint"):
        Reference(str(tmp_path))
