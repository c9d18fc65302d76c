"""Pruning masks as buffers: saved and loaded with the weights, re-applied in place, measured."""
import pytest
import torch
from safetensors.torch import save_model
from torch import nn

from foundry import catalog
from foundry.model.gpt import GPT
from foundry.weights.masks import apply_masks, attach_masks, load_weights, masked_weights, set_mask, sparsity


def tiny_gpt(seed=0):
    cfg = catalog.from_dict({"model": {"n_layer": 1, "n_head": 2, "n_embd": 8, "block_size": 4, "vocab_size": 16},
                             "budget": {"steps": 1}})
    torch.manual_seed(seed)
    return GPT(cfg.model)


def test_masks_save_and_load_with_the_weights(tmp_path):
    model = tiny_gpt()
    keep = torch.rand(model.blocks[0].attn.q_proj.weight.shape, generator=torch.Generator().manual_seed(0)) > 0.25
    set_mask(model.blocks[0].attn.q_proj, keep)
    path = str(tmp_path / "m.safetensors")
    save_model(model, path)
    fresh = tiny_gpt(seed=5)
    assert not sparsity(fresh)["layers"]
    load_weights(fresh, path)
    assert sparsity(fresh) == sparsity(model)
    assert sparsity(fresh)["sparsity"] == pytest.approx(1 - keep.float().mean().item())
    for (name, a), b in zip(model.state_dict().items(), fresh.state_dict().values()):
        assert torch.equal(a, b), name
    with pytest.raises(AttributeError):
        attach_masks(nn.Linear(2, 2), ["nowhere.weight_mask"])


def test_apply_masks_zeroes_what_training_moved():
    model = tiny_gpt()
    layer = model.blocks[0].ffn.mlp.c_fc
    set_mask(layer, torch.arange(layer.weight.numel()).view_as(layer.weight) % 2 == 0)
    pairs = masked_weights(model)
    with torch.no_grad():
        layer.weight.add_(1.0)  # an optimizer step moves every weight
    apply_masks(pairs)
    assert (layer.weight.view(-1)[1::2] == 0).all() and (layer.weight.view(-1)[::2] != 0).all()
    with pytest.raises(ValueError, match="mask of shape"):
        set_mask(layer, torch.ones(2, 2, dtype=torch.bool))
