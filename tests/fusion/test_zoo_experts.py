"""Experts imported from Hugging Face (foundry zoo import) fuse like trained ones: tiny random models
of two families and two widths (64, 96), sharing their tokenizer; step 0 reproduces the imported base,
which reproduces transformers' own logits; a few steps train."""
import pytest
import torch

import foundry
from foundry.fusion.experts import build_from_experts
from foundry.fusion.recipe import resolve
from foundry.training.loop import setup, train_step
from foundry.zoo import import_folder
from tests.fusion.helpers import corpora
from tests.zoo.hf_models import load_hf, save_tiny

PAIRS = [("gpt2", "qwen2"), ("llama", "mistral")]  # the second of each pair is 96 wide


@pytest.mark.parametrize("first,second", PAIRS)
def test_imported_experts_of_two_families_and_widths_fuse(first, second, tmp_path):
    folders = {first: save_tiny(tmp_path / "hf" / first, first),
               second: save_tiny(tmp_path / "hf" / second, second, hidden_size=96, head_dim=24)}
    runs = {name: import_folder(folder, str(tmp_path / "runs" / name), log=lambda *a: None)["out"]
            for name, folder in folders.items()}
    texts = corpora(tmp_path / "corpora")
    recipe = {"experts": runs, "base": second,
              "layers": [{"sources": [{"expert": second, "layer_range": [i, i + 1]},
                                      {"expert": first, "layer_range": [i, i + 1]}]} for i in range(2)],
              "router": {"kind": "token"}, "mixture": texts,
              "train": {"batch_size": 2, "dtype": "fp32", "warmup_steps": 1}, "budget": {"steps": 2},
              "eval": {"bytes": 256}}
    cfg = resolve(recipe)
    assert cfg.data.tokenizer == "hf" and cfg.model.n_embd == 96
    model = build_from_experts(cfg, torch.device("cpu"), log=lambda *a: None).eval()
    idx = torch.randint(0, 300, (2, 16), generator=torch.Generator().manual_seed(0))
    base_gpt, _, _ = foundry.load(runs[second])
    with torch.no_grad():
        fused, foundry_logits = model(idx), base_gpt(idx)
        hf_logits = load_hf(folders[second])(idx).logits
    assert torch.allclose(fused, foundry_logits, atol=1e-6, rtol=0)
    assert torch.allclose(fused, hf_logits, atol=1e-4)
    session = setup(cfg, tmp_path / "fused", log=lambda *a: None)
    assert all(torch.isfinite(torch.tensor(train_step(session)[0])) for _ in range(2))
