"""Round trips through the zoo, every family: HF -> Foundry -> HF and Foundry -> HF -> Foundry give
torch.equal tensors (tied embeddings included); transformers loads an export with no missing or
unexpected key and no warning; exported tokenizers encode as the run's did; big models shard.

    python -m pytest tests/zoo/test_round_trip.py -q
"""
import json
import os

import pytest
import torch
from safetensors.torch import load_file, save_file

from foundry.data import build_tokenizer
from foundry.model.gpt import GPT
from foundry.weights.checkpoint import load_model
from foundry.weights.tensors import TensorReader
from foundry.zoo import FAMILIES, export_run, import_folder
from tests.zoo.hf_models import TEXT, load_reporting, save_foundry_run, save_tiny

QUIET = {"log": lambda *a: None}


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_hf_to_foundry_to_hf_is_exact(family, hf_folders, imported, tmp_path):
    out = export_run(imported[family], str(tmp_path / "out"), **QUIET)
    assert out["family"] == family
    original, exported = TensorReader.from_folder(hf_folders[family]), TensorReader.from_folder(out["out"])
    assert sorted(exported.names()) == sorted(original.names())
    for name in original.names():
        a, b = original.get(name), exported.get(name)
        assert a.dtype == b.dtype and torch.equal(a, b), name
    model, problems = load_reporting(out["out"])
    assert problems == []
    for name in ("config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json"):
        assert os.path.isfile(os.path.join(out["out"], name))


def random_foundry_model(model_cfg, seed=0):
    torch.manual_seed(seed)
    model = GPT(model_cfg)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.1)  # norms and biases away from 1 and 0
    return model


@pytest.mark.parametrize("family,tokenizer", [("llama", "byte"), ("mistral", "bpe"), ("qwen2", "bpe"), ("gpt2", "char")])
def test_foundry_to_hf_to_foundry_is_exact(family, tokenizer, imported, tmp_path):
    """A model trained from scratch with Foundry's own tokenizer (the imported config's shape)."""
    cfg = load_model(imported[family])[2]
    tok = build_tokenizer(tokenizer, TEXT, bpe_vocab_size=300)
    cfg.data.tokenizer, cfg.data.tokenizer_path = tokenizer, ""
    model = random_foundry_model(cfg.model)
    run = save_foundry_run(tmp_path / "run", model, cfg, tok)
    hf = export_run(run, str(tmp_path / "hf"), **QUIET)["out"]
    back = import_folder(hf, str(tmp_path / "back"), **QUIET)["out"]
    reloaded, reloaded_tok, _ = load_model(back)
    expected = model.state_dict()
    assert reloaded.state_dict().keys() == expected.keys()
    for name, tensor in reloaded.state_dict().items():
        assert torch.equal(tensor, expected[name]), name
    if cfg.model.tie_embeddings:
        assert reloaded.lm_head.weight is reloaded.wte.weight
    from transformers import AutoTokenizer, PreTrainedTokenizerFast
    sample = TEXT[:200]
    assert reloaded_tok.encode(sample) == tok.encode(sample)
    loaders = [PreTrainedTokenizerFast]
    if family != "qwen2":  # transformers 5 replaces the pre-tokenizer of any qwen2 folder by Qwen2's own
        loaders.append(AutoTokenizer)
    for loader in loaders:
        assert loader.from_pretrained(hf)(sample, add_special_tokens=False)["input_ids"] == tok.encode(sample)


def test_load_reporting_sees_a_missing_and_an_unexpected_key(imported, tmp_path):
    """The check above can fail: a folder with one tensor renamed is reported."""
    out = export_run(imported["llama"], str(tmp_path / "out"), **QUIET)["out"]
    path = os.path.join(out, "model.safetensors")
    tensors = load_file(path)
    tensors["model.extra.weight"] = tensors.pop("model.norm.weight")
    save_file(tensors, path, metadata={"format": "pt"})
    _, problems = load_reporting(out)
    assert any("model.norm.weight" in p for p in problems) and any("model.extra.weight" in p for p in problems)


def test_export_shards_above_the_size_and_transformers_loads_it(imported, tmp_path):
    out = export_run(imported["qwen2"], str(tmp_path / "out"), max_shard_bytes=40_000, **QUIET)
    assert len(out["files"]) > 2 and os.path.isfile(os.path.join(out["out"], "model.safetensors.index.json"))
    index = json.load(open(os.path.join(out["out"], "model.safetensors.index.json")))
    assert set(index["weight_map"].values()) == set(out["files"])
    model, problems = load_reporting(out["out"])
    assert problems == []
    ours = load_model(imported["qwen2"])[0]
    ids = torch.randint(0, 300, (1, 64), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(model(ids).logits, ours(ids))


def test_export_casts_when_asked(imported, tmp_path):
    out = export_run(imported["gpt2"], str(tmp_path / "out"), dtype="bf16", **QUIET)["out"]
    reader = TensorReader.from_folder(out)
    assert {reader.spec(n)[0] for n in reader.names()} == {torch.bfloat16}
    assert json.load(open(os.path.join(out, "config.json")))["torch_dtype"] == "bfloat16"


def test_checkpoint_without_base_prefix_and_with_old_mask_buffers_imports(tmp_path):
    """The hub's gpt2 layout: names without "transformer.", attn.bias buffers saved, no lm_head."""
    folder = save_tiny(tmp_path / "gpt2", "gpt2")
    path = os.path.join(folder, "model.safetensors")
    tensors = {k.removeprefix("transformer."): v for k, v in load_file(path).items() if k != "lm_head.weight"}
    tensors["h.0.attn.bias"] = torch.tril(torch.ones(1, 1, 128, 128))
    save_file(tensors, path, metadata={"format": "pt"})
    run = import_folder(folder, str(tmp_path / "run"), **QUIET)["out"]
    model = load_model(run)[0]
    assert torch.equal(model.blocks[0].attn.q_proj.weight, tensors["h.0.attn.c_attn.weight"].t()[:64])
