"""Presets: `model.preset` fills the shape (explicit keys win), and every preset is the published
model: exported as its family's config.json, transformers builds a model with exactly Foundry's
parameter count (both on the meta device).

    python -m pytest tests/zoo/test_presets.py -q
"""
import pytest
import torch

from foundry import catalog
from foundry.config import ConfigError
from foundry.model.gpt import GPT
from foundry.zoo import PRESETS, exportable_family, hf_config_of
from foundry.zoo.cli import preset_rows

PUBLISHED_PARAMS = {"llama3-1b": 1.24e9, "llama3-8b": 8.03e9, "mistral-7b": 7.24e9, "qwen2-0.5b": 0.494e9,
                    "qwen2-1.5b": 1.54e9, "gpt2": 124e6, "gpt2-medium": 355e6}


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_preset_has_transformers_parameter_count(name):
    import transformers
    m = catalog.from_dict({"model": {"preset": name}, "budget": {"steps": 1}}).model
    family = exportable_family(m)
    hf = dict(hf_config_of(family, m))
    config_class = transformers.AutoConfig.for_model(hf.pop("model_type")).__class__
    with torch.device("meta"):
        ours = GPT(m).num_params()
        theirs = transformers.AutoModelForCausalLM.from_config(config_class(**hf)).num_parameters()
    assert ours == theirs
    assert ours == pytest.approx(PUBLISHED_PARAMS[name], rel=0.01)


def test_preset_fills_the_shape_and_explicit_keys_win():
    cfg = catalog.from_dict({"model": {"preset": "llama3-1b", "n_layer": 2, "vocab_size": 0}, "budget": {"steps": 1}})
    m = cfg.model
    assert (m.n_layer, m.n_embd, m.n_kv_head, m.mlp_hidden, m.position) == (2, 2048, 8, 8192, "llama3_rope")
    assert m.vocab_size == 0 and m.rope_factor == 32.0


def test_unknown_preset_lists_the_valid_ones():
    with pytest.raises(ConfigError, match=r"model.preset: unknown 'llama9' \(valid: gpt2, gpt2-medium, llama3-1b"):
        catalog.from_dict({"model": {"preset": "llama9"}, "budget": {"steps": 1}})


def test_zoo_list_reports_params_and_flops():
    rows = {r["preset"]: r for r in preset_rows()}
    assert set(rows) == set(PRESETS)
    assert rows["gpt2"]["params"] == 124_439_808 and rows["gpt2"]["family"] == "gpt2"
    assert rows["mistral-7b"]["family"] == "mistral"
    assert all(r["flops_per_token"] > 6 * r["params"] * 0.9 for r in rows.values())
