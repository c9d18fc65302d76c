"""Structured pruning: the least important heads, neurons and blocks go (constructed so that the
removed ones contribute nothing, the smaller model computes exactly the same), a genuinely
smaller config that validates and loads, smaller size and FLOPs per token, clear refusals."""
import dataclasses

import pytest
import torch

from foundry import catalog
from foundry.errors import UserError
from foundry.model.gpt import GPT
from foundry.prune.structured import prune_structured


def gpt(seed=0, **model):
    cfg = catalog.from_dict({"model": {"n_layer": 3, "n_head": 4, "n_embd": 32, "block_size": 8,
                                       "vocab_size": 40, **model}, "budget": {"steps": 1}})
    torch.manual_seed(seed)
    return GPT(cfg.model).eval()


def calibration(seed=1):
    return torch.randint(0, 40, (6, 8), generator=torch.Generator().manual_seed(seed))


def silence_heads(model, heads_per_layer):
    """Zero the output columns of some heads: they then contribute nothing, importance 0."""
    with torch.no_grad():
        for block, heads in zip(model.blocks, heads_per_layer):
            D = block.attn.head_dim
            for h in heads:
                block.attn.c_proj.weight[:, h * D:(h + 1) * D] = 0


def check_small(small, small_cfg, x, reference):
    """The smaller config validates and round-trips, builds the same model, computes the reference."""
    assert catalog.from_dict({"model": dataclasses.asdict(small_cfg), "budget": {"steps": 1}}).model == small_cfg
    assert GPT(small_cfg).state_dict().keys() == small.state_dict().keys()
    out = small(x)
    assert out.shape == (x.shape[0], x.shape[1], 40)
    if reference is not None:
        assert torch.allclose(out, reference, atol=1e-5)


@pytest.mark.parametrize("attention,kv", [("mha", 0), ("gqa", 2)])
def test_silent_heads_are_the_ones_removed_and_nothing_changes(attention, kv):
    model = gpt(attention=attention, n_kv_head=kv)
    silence_heads(model, [[1, 3], [0, 2], [1, 2]] if kv else [[1], [3], [0]])
    x = calibration()
    reference = model(x)
    amount = 0.5 if kv else 0.25
    small, small_cfg, report = prune_structured(model, "heads", amount, x)
    assert small_cfg.n_head == (2 if kv else 3) and small_cfg.head_size == 8
    assert small_cfg.kv_heads == (2 if kv else 3)
    check_small(small, small_cfg, x, reference)
    assert report["params_after"] < report["params_before"]
    assert report["flops_per_token_after"] < report["flops_per_token_before"]
    assert torch.equal(model(x), reference)  # the input model is left as it was


def test_global_scope_gives_layers_their_own_head_counts():
    model = gpt()
    silence_heads(model, [[0, 1, 2], [], [3]])
    x = calibration()
    reference = model(x)
    small, small_cfg, _ = prune_structured(model, "heads", 4 / 12, x, scope="global")
    assert [small_cfg.layers.get(str(i), {}).get("n_head", small_cfg.n_head) for i in range(3)] == [1, 4, 3]
    check_small(small, small_cfg, x, reference)


@pytest.mark.parametrize("activation", ["gelu", "swiglu"])
def test_silent_neurons_are_the_ones_removed(activation):
    model = gpt(activation=activation)
    with torch.no_grad():
        for block in model.blocks:
            block.ffn.mlp.c_proj.weight[:, ::4] = 0  # a quarter of the neurons write nothing
    x = calibration()
    reference = model(x)
    hidden = model.blocks[0].ffn.mlp.c_proj.in_features
    small, small_cfg, report = prune_structured(model, "neurons", 0.25, x)
    assert small_cfg.mlp_hidden == hidden - hidden // 4
    check_small(small, small_cfg, x, reference)
    assert report["layers"][0]["mlp_hidden"] == small_cfg.mlp_hidden


def test_moe_experts_keep_their_own_best_neurons():
    model = gpt(ffn="moe", n_experts=2, top_k=1)
    x = calibration()
    small, small_cfg, _ = prune_structured(model, "neurons", 0.5, x)
    assert small_cfg.mlp_hidden == model.blocks[0].ffn.experts[0].c_proj.in_features // 2
    check_small(small, small_cfg, x, None)


def test_an_identity_block_is_the_layer_removed():
    model = gpt(layers={"1": {"qk_norm": True}, "2": {"attention": "sliding_window", "window": 4}})
    with torch.no_grad():
        model.blocks[1].attn.c_proj.weight.zero_()
        model.blocks[1].ffn.mlp.c_proj.weight.zero_()
    x = calibration()
    reference = model(x)
    small, small_cfg, report = prune_structured(model, "layers", 0.34, x)
    assert small_cfg.n_layer == 2 and report["source_layers"] == [0, 2]
    assert small_cfg.layers == {"1": {"attention": "sliding_window", "window": 4}}  # layer 2's settings moved
    check_small(small, small_cfg, x, reference)


def test_structured_refusals_are_clear():
    x = calibration()
    with pytest.raises(UserError, match="MultiHeadLatentAttention has no layout"):
        prune_structured(gpt(attention="mla"), "heads", 0.25, x)
    with pytest.raises(UserError, match="biases each head"):
        prune_structured(gpt(position="alibi"), "heads", 0.25, x)
    with pytest.raises(UserError, match="alibi gives each"):  # nor can a config ask for it by hand
        gpt(position="alibi", head_size=8, layers={"0": {"n_head": 2}})
    with pytest.raises(UserError, match="valid: heads, neurons, layers"):
        prune_structured(gpt(), "rows", 0.25, x)
    with pytest.raises(UserError, match=r"in \(0, 1\)"):
        prune_structured(gpt(), "heads", 1.0, x)
