"""The mixture-of-experts FFN: routing, capacity overflow through the residual, auxiliary losses,
and FLOPs that count only active experts.

    python -m pytest tests/modules/test_moe.py -q
"""
import math

import torch

from foundry.model.gpt import GPT
from foundry.model.modules.moe import MixtureOfExperts


def test_overflow_tokens_get_zero_from_the_ffn(tiny_config):
    torch.manual_seed(0)
    moe = MixtureOfExperts(tiny_config("ffn", "moe", n_experts=4, top_k=1, capacity_factor=0.5).model).train()
    x = torch.randn(1, 16, 32)  # (B, T, C): 16 tokens, capacity ceil(0.5 * 16 / 4) = 2 per expert
    out = moe(x)
    expert = moe.router(x.reshape(16, 32)).topk(1, dim=-1).indices  # (16, 1)
    kept = moe.within_capacity(expert).squeeze(1)  # (16,)
    assert kept.sum() <= 4 * 2 and (~kept).any()
    assert torch.all(out[0, ~kept] == 0)  # these tokens keep only their residual
    assert torch.all(out[0, kept].abs().sum(-1) > 0)
    assert math.isclose(moe.stats["moe_dropped"].item(), (~kept).float().mean().item())
    for e in range(4):  # first come, first served: the earliest tokens of each expert are kept
        order = torch.nonzero(expert[:, 0] == e).flatten()
        assert kept[order].tolist() == [True] * min(2, len(order)) + [False] * max(0, len(order) - 2)


def test_eval_drops_nothing_so_tokens_are_independent(tiny_config):
    torch.manual_seed(0)
    moe = MixtureOfExperts(tiny_config("ffn", "moe", capacity_factor=0.25).model).eval()
    x = torch.randn(2, 8, 32)
    alone = torch.cat([moe(x[:, t:t + 1]) for t in range(8)], dim=1)
    torch.testing.assert_close(moe(x), alone, atol=1e-6, rtol=1e-6)
    assert moe.stats["moe_dropped"].item() == 0.0


def test_aux_loss_is_balance_plus_z_loss(tiny_config):
    cfg = tiny_config("ffn", "moe", n_experts=4, top_k=2, moe_aux_weight=0.01, moe_z_weight=0.001).model
    moe = MixtureOfExperts(cfg)
    torch.nn.init.zeros_(moe.router.weight)  # uniform router: balance = 1, z = log(E)^2
    moe(torch.randn(2, 8, 32))
    assert math.isclose(moe.aux_loss.item(), 0.01 * 1.0 + 0.001 * math.log(4) ** 2, rel_tol=1e-5)
    torch.manual_seed(0)
    model = GPT(tiny_config("ffn", "moe").model)
    model(torch.randint(0, 256, (2, 8)))
    total = model.aux_loss()  # one per layer, summed, differentiable through the router
    assert total.shape == () and total.requires_grad
    total.backward()
    assert model.blocks[0].ffn.router.weight.grad.abs().sum() > 0


def test_flops_count_active_experts_only(tiny_config):
    dense = GPT(tiny_config("ffn", "dense").model)
    for top_k in (1, 2):
        moe = GPT(tiny_config("ffn", "moe", n_experts=4, top_k=top_k).model)
        router = 2 * 32 * 4  # n_layer * n_embd * n_experts
        mlp = sum(p.numel() for p in dense.blocks[0].ffn.parameters())
        assert moe.flops_per_token() - dense.flops_per_token() == 6 * (router + 2 * (top_k - 1) * mlp)
        assert moe.num_params() - dense.num_params() == router + 2 * 3 * mlp  # all 4 experts stored
