"""Every family: an imported tiny random model computes transformers' logits (fp32, assert_close
defaults, 80 tokens) and its KV-cached greedy decode of 32 tokens gives transformers' tokens.

    python -m pytest tests/zoo/test_parity.py -q
"""
import dataclasses

import pytest
import torch

from foundry.model.gpt import GPT
from foundry.weights.checkpoint import load_model
from foundry.zoo import FAMILIES, import_folder
from tests.zoo.hf_models import load_hf, save_tiny

SEQ = 80  # longer than Mistral's test window (16) and Llama's original context (32)


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_logits_equal_transformers(family, hf_folders, imported):
    model, _, cfg = load_model(imported[family])
    reference = load_hf(hf_folders[family])
    ids = torch.randint(0, 300, (2, SEQ), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = reference(ids).logits
        torch.testing.assert_close(model(ids), expected)
    assert expected.std() > 0.1  # logits that differ by token: a wrong weight would show


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_greedy_decode_with_kv_cache_equals_transformers(family, hf_folders, imported):
    model, _, _ = load_model(imported[family])
    reference = load_hf(hf_folders[family])
    prompt = torch.randint(0, 300, (1, 8), generator=torch.Generator().manual_seed(1))
    expected = reference.generate(prompt, max_new_tokens=32, min_new_tokens=32, do_sample=False,
                                  use_cache=True, eos_token_id=None, pad_token_id=0)
    out = model.generate(prompt, 32, temperature=0)
    assert out.shape == (1, 40) and torch.equal(out, expected)


def test_the_tests_exercise_what_the_families_need(imported):
    """Mistral's window is shorter than the sequence (and changes the logits), Llama's rope_scaling
    is on with GQA, Qwen2 ties its embeddings and has q/k/v biases without an o_proj bias."""
    mistral, _, cfg = load_model(imported["mistral"])
    assert cfg.model.attention == "sliding_window" and cfg.model.window < SEQ
    unwindowed = GPT(dataclasses.replace(cfg.model, attention="gqa")).eval()
    unwindowed.load_state_dict(mistral.state_dict())
    ids = torch.randint(0, 300, (1, SEQ), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        assert not torch.allclose(mistral(ids)[:, -1], unwindowed(ids)[:, -1], atol=1e-3)
    llama = load_model(imported["llama"])[2].model
    assert llama.position == "llama3_rope" and llama.kv_heads < llama.n_head and not llama.tie_embeddings
    qwen, _, qcfg = load_model(imported["qwen2"])
    attn = qwen.blocks[0].attn
    assert qcfg.model.tie_embeddings and qwen.lm_head.weight is qwen.wte.weight
    assert attn.q_proj.bias is not None and attn.kv_proj.bias.abs().sum() > 0 and attn.c_proj.bias is None


def test_gpt2_with_the_exact_gelu_is_foundrys_gelu_exact(tmp_path):
    """activation_function "gelu" (erf) imports as gelu_exact, and computes transformers' logits."""
    folder = save_tiny(tmp_path / "gpt2", "gpt2", activation_function="gelu")
    model, _, cfg = load_model(import_folder(folder, str(tmp_path / "run"), log=lambda *a: None)["out"])
    assert cfg.model.activation == "gelu_exact"
    ids = torch.randint(0, 300, (1, SEQ), generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        torch.testing.assert_close(model(ids), load_hf(folder)(ids).logits)
