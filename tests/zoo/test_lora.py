"""LoRA on imported models, every family: `foundry zoo export` of a LoRA run writes the merged
model, or a peft adapter folder that peft loads onto the exported base, both with the Foundry
model's logits. The adapters are random (not the zero B of a fresh run), so a wrong mapping shows.

    python -m pytest tests/zoo/test_lora.py -q
"""
import dataclasses
import json
import os

import pytest
import torch

from foundry.model.gpt import GPT
from foundry.weights.checkpoint import find_start_weights, load_model, load_start_weights
from foundry.weights.lora import apply_lora
from foundry.zoo import FAMILIES, export_run
from tests.zoo.hf_models import load_reporting, save_foundry_run

QUIET = {"log": lambda *a: None}


def lora_run(imported_run, folder, seed=0):
    """A run fine-tuned from `imported_run` with LoRA rank 4, its adapters set to random values."""
    cfg = load_model(imported_run)[2]
    cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, lora_rank=4, lora_alpha=8.0,
                                                             init_from=imported_run))
    weights, tokenizer = find_start_weights(imported_run)
    model = GPT(cfg.model)
    load_start_weights(model, weights, imported_run)
    model = apply_lora(model, cfg.train)
    torch.manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_" in name:
                p.copy_(torch.randn_like(p) * 0.05)
    return save_foundry_run(folder, model, cfg, tokenizer), model.eval()


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_lora_run_exports_merged_and_as_a_peft_adapter(family, imported, tmp_path):
    import peft
    run, model = lora_run(imported[family], tmp_path / "lora")
    ids = torch.randint(0, 300, (2, 64), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = model(ids)
        base_logits = load_model(imported[family])[0](ids)
    assert (expected - base_logits).abs().max() > 1e-2  # the adapters change the model

    merged = export_run(run, str(tmp_path / "merged"), **QUIET)
    assert merged["family"] == family  # recorded in the imported run's zoo.json, found through init_from
    hf_merged, problems = load_reporting(merged["out"])
    assert problems == []
    base = export_run(imported[family], str(tmp_path / "base"), **QUIET)["out"]
    adapter = export_run(run, str(tmp_path / "adapter"), lora="adapter", **QUIET)["out"]
    assert sorted(os.listdir(adapter)) == ["adapter_config.json", "adapter_model.safetensors"]
    config = json.load(open(os.path.join(adapter, "adapter_config.json")))
    assert config["r"] == 4 and config["lora_alpha"] == 8.0
    with_adapter = peft.PeftModel.from_pretrained(load_reporting(base)[0], adapter).eval()
    with torch.no_grad():
        torch.testing.assert_close(hf_merged(ids).logits, expected)
        torch.testing.assert_close(with_adapter(ids).logits, expected)


def test_adapter_export_of_a_run_without_lora_is_refused(imported, tmp_path):
    from foundry.errors import UserError
    with pytest.raises(UserError, match="no LoRA adapters"):
        export_run(imported["llama"], str(tmp_path / "adapter"), lora="adapter", **QUIET)
    assert not os.path.exists(tmp_path / "adapter")
