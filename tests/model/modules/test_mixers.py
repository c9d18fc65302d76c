"""The token mixers beyond attention and the bounded window cache: retention's three forms agree,
the retention / ssm caches stay constant in size, the router's balance loss and usage reach the
trainer's metrics, the sliding-window cache stops growing at the window, and FLOPs count the window
and the scan. (Training, cached decoding, packed rows and greedy generation of every mixer are in
the parametrized tests of test_components.py and tests/model/test_packed_rows.py.)

    python -m pytest tests/model/modules/test_mixers.py -q
"""
import json
import os

import pytest
import torch

from foundry.model.gpt import GPT
from foundry.model.modules.retention import retain
from foundry.model.modules.scan import linear_scan
from foundry.model.modules.sliding_window import band_pairs
from foundry.training.loop import train
from tests.conftest import REPO, tiny_overrides


def decode(model, idx, prompt=4):
    """Logits of a prompt, then one token at a time through the caches; and the caches."""
    caches = [{} for _ in model.blocks]
    with torch.no_grad():
        parts = [model(idx[:, :prompt], caches, 0)]
        parts += [model(idx[:, t:t + 1], caches, t) for t in range(prompt, idx.shape[1])]
    return torch.cat(parts, dim=1), caches


def test_retention_parallel_chunked_and_recurrent_forms_are_equal():
    torch.manual_seed(0)
    B, H, T, D = 2, 3, 13, 8
    q, k, v = (torch.randn(B, H, T, D, dtype=torch.float64) for _ in range(3))
    log_decay = torch.log1p(-2.0 ** (-5.0 - torch.arange(H, dtype=torch.float64)))
    parallel, final = retain(q, k, v, log_decay)
    # the closed form: o_n = sum_{m <= n} gamma^(n - m) (q_n . k_m) v_m
    gap = torch.arange(T)[:, None] - torch.arange(T)[None, :]
    decay = torch.where(gap >= 0, log_decay.exp()[:, None, None] ** gap.clamp(min=0), 0.0)
    torch.testing.assert_close(parallel, (q @ k.transpose(-1, -2) * decay) @ v)
    for size in (1, 4, 5):  # 1 is the recurrent form: S = gamma S + k^T v, o = q S
        outs, state = [], None
        for s in range(0, T, size):
            out, state = retain(q[:, :, s:s + size], k[:, :, s:s + size], v[:, :, s:s + size], log_decay, state)
            outs.append(out)
        torch.testing.assert_close(torch.cat(outs, dim=2), parallel)
        torch.testing.assert_close(state, final)


def test_retention_chunked_training_form_equals_the_parallel_one(tiny_config):
    torch.manual_seed(0)
    parallel = GPT(tiny_config("attention", "retention").model).eval()
    chunked = GPT(tiny_config("attention", "retention", retention_chunk=3).model).eval()
    chunked.load_state_dict(parallel.state_dict())
    idx = torch.randint(0, 256, (2, 16))
    with torch.no_grad():
        torch.testing.assert_close(chunked(idx), parallel(idx), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(decode(chunked, idx)[0], parallel(idx).detach(), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name,shapes", [("retention", {"state": (2, 4, 8, 8)}),
                                         ("ssm", {"h": (2, 64, 16), "conv": (2, 3, 64)})])
def test_recurrent_caches_do_not_grow_with_the_context(name, shapes, tiny_config):
    model = GPT(tiny_config("attention", name, block_size=64).model).eval()
    idx = torch.randint(0, 256, (2, 64))
    caches = [{} for _ in model.blocks]
    with torch.no_grad():
        for t in range(64):
            model(idx[:, t:t + 1], caches, t)
            assert {key: tuple(value.shape) for key, value in caches[0].items()} == shapes


def test_linear_scan_matches_the_loop_and_its_gradients_are_exact():
    torch.manual_seed(0)
    keep = torch.rand(7, 2, 3, 4, dtype=torch.float64, requires_grad=True)  # (T, B, E, N)
    write = torch.randn(7, 2, 3, 4, dtype=torch.float64, requires_grad=True)
    h0 = torch.randn(2, 3, 4, dtype=torch.float64, requires_grad=True)
    h, loop = h0, []
    for t in range(7):
        h = keep[t] * h + write[t]
        loop.append(h)
    torch.testing.assert_close(linear_scan(keep, write, h0), torch.stack(loop))
    assert torch.autograd.gradcheck(linear_scan, (keep, write, h0))


def test_ssm_state_matrix_is_not_weight_decayed(tiny_config):
    """As in Mamba: A (through A_log), D and dt_bias stay out of AdamW's decay; the projections are in it."""
    from foundry.training.optim import make_optimizer
    cfg = tiny_config("attention", "ssm")
    model = GPT(cfg.model)
    decayed = {id(p) for g in make_optimizer(model, cfg, "cpu").param_groups if g["weight_decay"] for p in g["params"]}
    ssm = model.blocks[0].attn
    assert not {id(p) for p in (ssm.A_log, ssm.D, ssm.dt_bias)} & decayed and id(ssm.in_proj.weight) in decayed


def test_ssm_forgets_everything_before_a_state_reset(tiny_config):
    """Selectivity: with dt huge, exp(dt A) ~ 0 and each output depends only on the last d_conv tokens."""
    torch.manual_seed(0)
    model = GPT(tiny_config("attention", "ssm", n_layer=1, position="none").model).eval()
    with torch.no_grad():
        model.blocks[0].attn.dt_bias.fill_(30.0)
    idx = torch.randint(0, 256, (1, 12))
    other = idx.clone()
    other[0, 0] = (other[0, 0] + 1) % 256
    with torch.no_grad():
        delta = (model(idx) - model(other)).abs().amax(dim=(0, 2))  # (T,)
    assert delta[:4].min() > 1e-4 and delta[4:].max() < 1e-5  # token 0 reaches 3 later ones through the conv


def test_router_balance_loss_and_usage(tiny_config):
    torch.manual_seed(0)
    model = GPT(tiny_config("attention", "routed", router_top_k=1, router_aux_weight=0.5).model)
    router = model.blocks[0].attn
    idx = torch.randint(0, 256, (4, 16))
    model(idx)
    use = [router.stats[f"router_use_{name}"] for name in ("mha", "retention", "ssm")]
    assert sum(use).item() == pytest.approx(1.0)
    assert router.aux_loss.item() == pytest.approx(0.5 * router.stats["router_balance"].item())
    assert model.aux_loss().item() == pytest.approx(sum(b.attn.aux_loss.item() for b in model.blocks))
    assert {"layer_0/router_use_ssm", "layer_1/router_balance"} <= set(model.ffn_stats())
    with torch.no_grad():  # feature 0 is a constant 3 that pushes every token towards ssm
        router.router.weight.normal_(0, 0.3)
        router.router.weight[:, 0] = 0.0
        router.router.weight[2, 0] = 1.0
    x = torch.randn(2, 16, 32)  # (B, T, C)
    x[..., 0] = 3.0
    router(x, model.position)
    before = router.stats["router_balance"].item()
    assert router.stats["router_use_ssm"].item() > 0.6 and before > 1.5  # 1.0 balanced, 3.0 all on one mixer
    optimizer = torch.optim.SGD(router.router.parameters(), lr=0.1)  # the balance loss alone spreads the load
    for _ in range(40):
        router(x, model.position)
        optimizer.zero_grad()
        router.aux_loss.backward()
        optimizer.step()
    assert router.stats["router_balance"].item() < 1.1 and router.stats["router_use_ssm"].item() < 0.4


@pytest.mark.parametrize("top_k", [1, 2, 3])
def test_router_mixes_the_top_k_mixers_by_their_probabilities(top_k, tiny_config):
    torch.manual_seed(0)
    router = GPT(tiny_config("attention", "routed", n_layer=1, router_top_k=top_k).model).eval().blocks[0].attn
    position = GPT(tiny_config("attention", "routed", n_layer=1).model).position
    x = torch.randn(2, 8, 32)
    with torch.no_grad():
        probs = router.router(x).softmax(-1)  # (B, T, 3), temperature 1
        outputs = torch.stack([mixer(x, position) for mixer in router.mixers], dim=-1)  # (B, T, C, 3)
        chosen = probs.topk(top_k, dim=-1).indices
        gate = torch.zeros_like(probs).scatter(-1, chosen, probs.gather(-1, chosen))  # 0 off the top k
        torch.testing.assert_close(router(x, position), (outputs * gate[:, :, None, :]).sum(-1))


def test_router_temperature_sharpens_the_gate(tiny_config):
    torch.manual_seed(0)
    hot = GPT(tiny_config("attention", "routed", n_layer=1, router_temperature=10.0).model)
    cold = GPT(tiny_config("attention", "routed", n_layer=1, router_temperature=0.001).model)
    cold.load_state_dict(hot.state_dict())
    x = torch.randn(1, 8, 32)
    gates = {}
    for name, model in (("hot", hot), ("cold", cold)):
        router = model.blocks[0].attn
        gates[name] = (router.router(x) / router.temperature).softmax(-1).amax(-1)  # (1, 8) top gate
    assert gates["hot"].max() < 0.4 and gates["cold"].min() > 0.99


def test_router_usage_is_logged_in_the_training_metrics(tiny_text, tmp_path):
    from foundry import catalog
    cfg = catalog.load(os.path.join(REPO, "baselines", "tiny.yaml"), tiny_overrides(tiny_text, steps=3) + ["model.attention=routed",
                                                                                     "model.router_top_k=1"])
    assert train(cfg, tmp_path / "run")["status"] == "done"
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
            if '"loss"' in line]
    assert len(rows) == 3
    for row in rows:
        assert sum(row[f"layer_0/router_use_{n}"] for n in ("mha", "retention", "ssm")) == pytest.approx(1.0)
        assert row["layer_0/router_balance"] >= 1.0 - 1e-6  # 1.0 is perfectly balanced, the minimum


def test_window_cache_stops_growing_at_the_window(tiny_config):
    torch.manual_seed(0)
    windowed = GPT(tiny_config("attention", "sliding_window", block_size=48, window=6).model).eval()
    plain = GPT(tiny_config("attention", "mha", block_size=48).model).eval()
    idx = torch.randint(0, 256, (2, 48))
    for model, most in ((windowed, 5), (plain, 48)):
        caches = [{} for _ in model.blocks]
        held = []
        with torch.no_grad():
            model(idx[:, :10], caches, 0)
            for t in range(10, 48):
                model(idx[:, t:t + 1], caches, t)
                k = caches[0]["k"]
                held.append((k.shape[2], k.untyped_storage().nbytes()))
        assert max(length for length, _ in held) == most
        if model is windowed:  # the memory behind the cache, not just the view, is the window's
            assert all(n == held[0][1] for _, n in held) and held[0][1] == 2 * 2 * 5 * 8 * 4
    full = windowed(idx).detach()
    torch.testing.assert_close(decode(windowed, idx, prompt=10)[0], full, atol=1e-5, rtol=1e-5)


def test_flops_count_the_window_and_the_scan(tiny_config):
    mha = GPT(tiny_config("attention", "mha", block_size=16).model)
    same = GPT(tiny_config("attention", "sliding_window", block_size=16, window=16, n_kv_head=0).model)
    narrow = GPT(tiny_config("attention", "sliding_window", block_size=16, window=4, n_kv_head=0).model)
    assert same.flops_per_token() == mha.flops_per_token()
    assert band_pairs(16, 4) == 4 * 5 // 2 + 12 * 4 and band_pairs(16, 16) == 16 * 17 // 2
    scores = 6 * 16 * 32  # 6 T C a layer; the window computes band_pairs of the T (T + 1) / 2 causal pairs
    assert mha.flops_per_token() - narrow.flops_per_token() == 2 * (scores - scores * band_pairs(16, 4) // 136)
    ssm = GPT(tiny_config("attention", "ssm").model)
    n = ssm.num_params(non_embedding=True) + 256 * 32
    assert ssm.flops_per_token() == 6 * n + 2 * 18 * 64 * 16  # the scan: 2 layers x expand C x d_state


def test_mixers_vary_by_layer_and_decode_exactly(tiny_config):
    torch.manual_seed(0)
    cfg = tiny_config(n_layer=4, layers={"0": {"attention": "retention", "retention_chunk": 4},
                                         "1": {"attention": "ssm", "d_state": 4, "expand": 1},
                                         "2": {"attention": "routed", "router_mixers": ["ssm", "sliding_window"],
                                               "router_top_k": 1, "window": 3},
                                         "3": {"attention": "sliding_window", "window": 4}}).model
    model = GPT(cfg).eval()
    assert [type(b.attn).__name__ for b in model.blocks] == ["MultiScaleRetention", "SelectiveSSM", "RoutedMixer",
                                                             "SlidingWindowAttention"]
    assert model.blocks[1].attn.A_log.shape == (32 * 4,) and model.blocks[2].attn.names == ["ssm", "sliding_window"]
    idx = torch.randint(0, 256, (2, 16))
    logits, caches = decode(model, idx)
    torch.testing.assert_close(logits, model(idx).detach(), atol=1e-5, rtol=1e-5)
    assert caches[2]["1"]["k"].shape[2] == 2  # the routed layer's window-3 attention keeps 2 past keys


@pytest.mark.parametrize("name", ["sliding_window", "retention", "ssm", "routed"])
def test_prompt_read_in_chunks_through_the_caches_equals_the_full_forward(name, tiny_config):
    """As bench/generation_memory.py and a long prompt read it: several tokens a call, the cache in between."""
    torch.manual_seed(0)
    model = GPT(tiny_config("attention", name, retention_chunk=2 if name == "retention" else 0).model).eval()
    idx = torch.randint(0, 256, (2, 16))
    caches = [{} for _ in model.blocks]
    with torch.no_grad():
        parts = [model(idx[:, s:s + 6], caches, s) for s in range(0, 16, 6)]  # 6, 6, 4 tokens
        torch.testing.assert_close(torch.cat(parts, dim=1), model(idx), atol=1e-5, rtol=1e-5)
