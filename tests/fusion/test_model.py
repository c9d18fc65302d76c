"""The fused model: step 0 is the base expert exactly, for every adapter and router kind and either
base (different families and widths); cached decoding equals the full pass; only named blocks are read."""
import pytest
import torch

import foundry
from foundry.fusion.adapters import ADAPTERS
from foundry.fusion.experts import build_from_experts
from foundry.fusion.recipe import resolve
from foundry.fusion.routers import ROUTERS
from tests.fusion.helpers import two_expert_recipe


def fused(experts, texts, base, adapter="linear", router="pooled", **extra):
    cfg = resolve(two_expert_recipe(experts, base, texts, adapter, router, **extra))
    torch.manual_seed(0)
    return build_from_experts(cfg, torch.device("cpu"), log=lambda *_: None).eval(), cfg


@pytest.mark.parametrize("base", ["gpt2", "llama"])
@pytest.mark.parametrize("adapter", sorted(ADAPTERS))
@pytest.mark.parametrize("router", sorted(ROUTERS))
def test_step_zero_is_the_base_expert(experts, texts, base, adapter, router):
    model, cfg = fused(experts, texts, base, adapter, router)
    # the base's path through the fused layers must cover all of its blocks for "the base model"
    expert_gpt, _, _ = foundry.load(experts[base])
    depth = len(model.blocks)
    expert_gpt.blocks = expert_gpt.blocks[:depth]  # the recipe fuses the first two blocks of each
    idx = torch.randint(0, 256, (3, 20), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        want, got = expert_gpt(idx), model(idx)
    assert got.shape == want.shape == (3, 20, 256)
    assert torch.allclose(got, want, atol=1e-6, rtol=0), (got - want).abs().max()
    other = {"gpt2": "llama", "llama": "gpt2"}[base]
    assert cfg.model.n_embd == expert_gpt.cfg.n_embd != model.spec.experts[other].model.n_embd


@pytest.mark.parametrize("router", sorted(ROUTERS))
def test_cached_decoding_equals_the_full_pass(experts, texts, router):
    model, _ = fused(experts, texts, "llama", "bottleneck", router)
    with torch.no_grad():  # move every gate and router off its initial state so all paths contribute
        for layer in model.blocks:
            layer.router.gate.fill_(0.6)
            torch.nn.init.normal_(layer.router.score.weight, std=1.0)
        for p in model.adapter_parameters():
            p.add_(torch.randn_like(p) * 0.05)
    idx = torch.randint(0, 256, (2, 12), generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        full = model(idx)
        caches = [{} for _ in model.blocks]
        steps = [model(idx[:, :5], caches, 0)] + [model(idx[:, t:t + 1], caches, t) for t in range(5, 12)]
    assert torch.allclose(torch.cat(steps, dim=1), full, atol=1e-5)
    out = model.generate(idx[:, :4], 6, temperature=0)
    assert out.shape == (2, 10)


def test_only_the_named_blocks_are_read(experts, texts):
    lines = []
    cfg = resolve(two_expert_recipe(experts, "llama", texts))
    model = build_from_experts(cfg, torch.device("cpu"), log=lines.append)
    llama_line = next(line for line in lines if line.startswith("expert llama"))
    # llama has 3 blocks of 7 tensors, the recipe names 2; plus the embedding, final norm and head
    assert llama_line.startswith("expert llama: 17 of 24 tensors read")
    assert not any(p.is_meta for p in model.parameters())
    assert {len(layer.paths) for layer in model.blocks} == {2}


def test_frozen_and_trained_parts(experts, texts):
    model, _ = fused(experts, texts, "gpt2", "bottleneck", "token")
    trained = {id(p) for p in model.adapter_parameters() + model.router_parameters()}
    for name, p in model.named_parameters():
        assert p.requires_grad == (id(p) in trained), name
    assert model.lm_head.weight is model.wte.weight  # the GPT-2-style base ties its head
    model.train()
    assert all(not m.training for m in model.frozen_modules()) and model.blocks[0].router.training
    assert model.trainable_params() == sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert model.flops_per_token() > 6 * model.trainable_params()
