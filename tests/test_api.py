"""The public Python API (foundry/__init__.py): load_config, train, load, GPT — the names scripts use."""
import subprocess
import sys

import torch

import foundry
from tests.conftest import REPO, tiny_overrides


def test_config_train_load_round_trip(tiny_text, tmp_path):
    cfg = foundry.load_config(f"{REPO}/baselines/tiny.yaml", tiny_overrides(tiny_text, steps=3))
    assert cfg.model.n_layer == 1 and cfg.budget.steps == 3
    summary = foundry.train(cfg, tmp_path / "run")
    assert summary["status"] == "done" and summary["steps"] == 3
    model, tokenizer, loaded = foundry.load(tmp_path / "run")
    assert not model.training and isinstance(model, foundry.GPT)
    assert loaded.model.vocab_size == tokenizer.vocab_size
    ids = tokenizer.encode("the quick")
    assert tokenizer.decode(ids) == "the quick"
    with torch.no_grad():
        logits = model(torch.tensor([ids]))
    assert logits.shape == (1, len(ids), tokenizer.vocab_size)
    fresh = foundry.GPT(loaded.model)
    assert fresh.num_params() == model.num_params()


def test_import_foundry_is_cheap():
    """`import foundry` pulls in neither torch nor the registries (the CLI's fast commands rely on it)."""
    code = "import sys, foundry; print('torch' in sys.modules, 'foundry.catalog' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]
