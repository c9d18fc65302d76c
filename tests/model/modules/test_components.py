"""Every registered component (foundry.model.modules registries and the losses): it trains, its
cached decoding is exact and generation matches, every MLP also works inside `ffn: moe`, and every
invalid combination is rejected at config load with a reason. The contract each kind keeps
(protocols.py) is checked in tests/model/test_protocols.py.

    python -m pytest tests/model -q
"""
import pytest
import torch

from foundry import catalog
from foundry.config import ConfigError
from foundry.data.tokenizer import ByteTokenizer
from foundry.model.gpt import GPT
from foundry.model.modules import REGISTRIES
from foundry.training.dpo import frozen_reference, pair_batch
from foundry.training.losses import LOSSES

EVERY_COMPONENT = [(kind, name) for kind, registry in {**REGISTRIES, "loss": LOSSES}.items() for name in registry]
CACHED_KINDS = [(kind, name) for kind, name in EVERY_COMPONENT if kind != "loss"]  # every model component
MLPS_IN_MOE = [("activation", name) for name in REGISTRIES["activation"]]
PAIRS = [{"prompt": f"Q{i}:", "chosen": " yes", "rejected": " no!"} for i in range(4)]


def ids(params):
    return [f"{kind}-{name}" for kind, name in params]


@pytest.mark.parametrize("kind,name", EVERY_COMPONENT, ids=ids(EVERY_COMPONENT))
def test_component_trains(kind, name, tiny_config):
    """Forward + backward reach every weight, and a few AdamW steps on one batch lower the loss."""
    check_trains(tiny_config(kind, name), f"{kind} {name}")


@pytest.mark.parametrize("kind,name", MLPS_IN_MOE, ids=ids(MLPS_IN_MOE))
def test_every_mlp_trains_and_decodes_inside_moe(kind, name, tiny_config):
    cfg = tiny_config(kind, name, ffn="moe")
    check_trains(cfg, f"moe of {name}")
    check_cached_decoding(cfg)


def check_trains(cfg, what):
    torch.manual_seed(0)
    model = GPT(cfg.model)
    loss_fn = LOSSES[cfg.train.loss](cfg.train)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.train.lr)
    if loss_fn.needs_pairs:
        batch, reference = pair_batch(PAIRS, ByteTokenizer(), cfg.model.block_size), frozen_reference(model)
        def objective():
            return loss_fn(model(batch["idx"]), batch["targets"], reference(batch["idx"]))
    else:
        x = torch.randint(0, cfg.model.vocab_size, (4, cfg.model.block_size))
        y = torch.roll(x, -1, dims=1)
        def objective():
            return loss_fn(model(x), y)
    losses = []
    for step in range(8):
        loss = objective()
        aux = model.aux_loss()
        total = loss + aux if aux is not None else loss
        optimizer.zero_grad()
        total.backward()
        if step == 0:
            missing = [n for n, p in model.named_parameters() if p.grad is None]
            assert not missing, f"no gradient reaches {missing}"
            assert all(torch.isfinite(p.grad).all() for p in model.parameters())
        optimizer.step()
        losses.append(loss.item())
    assert all(map(lambda v: v == v, losses)), losses  # no NaN
    assert losses[-1] < losses[0] - 0.05, f"{what}: loss did not fall: {losses}"


# model settings that change components without naming one (the Hugging Face families need them)
SETTINGS = [
    {"qkv_bias": True, "attention": "gqa", "n_kv_head": 2},    # Qwen2: q/k/v biases, none on c_proj
    {"norm_eps": 1e-5},                                       # Llama's rms_norm_eps
    {"norm_eps": 1e-3, "norm": "layernorm", "bias": True},    # GPT-2's layer_norm_epsilon
    {"mlp_hidden": 40, "activation": "swiglu"},               # intermediate_size given exactly
    {"mlp_hidden": 40, "activation": "gelu"},
]


@pytest.mark.parametrize("settings", SETTINGS, ids=[",".join(f"{k}={v}" for k, v in s.items()) for s in SETTINGS])
def test_model_setting_trains_and_decodes(settings, tiny_config):
    cfg = tiny_config(**settings)
    check_trains(cfg, str(settings))
    check_cached_decoding(cfg)
    block = GPT(cfg.model).blocks[0]
    if settings.get("qkv_bias"):
        attn = block.attn
        assert attn.q_proj.bias is not None and attn.kv_proj.bias is not None and attn.c_proj.bias is None
    if "norm_eps" in settings:
        assert block.norm1.eps == settings["norm_eps"]
    if "mlp_hidden" in settings:
        assert block.ffn.mlp.c_proj.in_features == settings["mlp_hidden"]


@pytest.mark.parametrize("qk_norm", [False, True])
@pytest.mark.parametrize("kind,name", CACHED_KINDS, ids=ids(CACHED_KINDS))
def test_cached_decoding_equals_full_forward(kind, name, qk_norm, tiny_config):
    check_cached_decoding(tiny_config(kind, name, qk_norm=qk_norm))


def check_cached_decoding(cfg):
    torch.manual_seed(1)
    model = GPT(cfg.model).eval()
    idx = torch.randint(0, cfg.model.vocab_size, (2, cfg.model.block_size))  # (B, T)
    with torch.no_grad():
        full = model(idx)  # (B, T, V)
        caches = [{} for _ in model.blocks]
        parts = [model(idx[:, :5], caches, 0)]  # a prompt, then one token at a time
        parts += [model(idx[:, t:t + 1], caches, t) for t in range(5, idx.shape[1])]
    torch.testing.assert_close(torch.cat(parts, dim=1), full, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("kind,name", CACHED_KINDS, ids=ids(CACHED_KINDS))
def test_greedy_generate_equals_uncached_greedy(kind, name, tiny_config):
    torch.manual_seed(2)
    model = GPT(tiny_config(kind, name).model).eval()
    prompt = torch.randint(0, 256, (2, 4))
    out = model.generate(prompt, 8, temperature=0)
    expected = prompt
    with torch.no_grad():
        for _ in range(8):
            expected = torch.cat([expected, model(expected)[:, -1].argmax(-1, keepdim=True)], dim=1)
    assert torch.equal(out, expected)


INVALID = [
    ({"attention": "sliding_window", "window": 0}, "model.attention: sliding_window needs model.window > 0"),
    ({"attention": "sliding_window", "window": 17}, "window=17 is larger than model.block_size=16"),
    ({"attention": "sparse", "window": 4}, "sparse needs model.window > 0 and model.stride > 0"),
    ({"attention": "sparse", "window": 32, "stride": 4}, "must not exceed model.block_size=16"),
    ({"attention": "mla", "position": "alibi"}, "mla takes positions only through its decoupled rope key"),
    ({"attention": "mla", "rope_dim": 3}, "rope_dim=3 must be even"),
    ({"attention": "mla", "rope_dim": 8}, "below head_dim=8"),
    ({"attention": "mla", "kv_lora_rank": 64}, "kv_lora_rank=64 must be in [0, n_embd=32]"),
    ({"attention": "mla", "n_kv_head": 2}, "n_kv_head=2 does not apply"),
    ({"ffn": "moe", "n_experts": 2, "top_k": 3}, "model.ffn: moe needs 1 <= model.top_k <= model.n_experts"),
    ({"ffn": "moe", "capacity_factor": 0.0}, "model.capacity_factor: must be in (0, 64], got 0.0"),
    ({"ffn": "moe", "moe_aux_weight": -1.0}, "model.moe_aux_weight: must be in [0, 100], got -1.0"),
    ({"n_embd": 36, "position": "rope"}, "model.position: rope rotates channel pairs; head_dim=9"),
    ({"position": "llama3_rope", "rope_low_freq_factor": 4.0}, "0 < rope_low_freq_factor < rope_high_freq_factor"),
    ({"position": "llama3_rope", "rope_factor": 0.0}, "model.rope_factor: must be in (0, 1e6]"),
    ({"mlp_hidden": -1}, "model.mlp_hidden: must be in [0, 1e8]"),
    ({"attention": "retention", "position": "alibi"}, "retention decays its scores itself; model.position=alibi"),
    ({"attention": "ssm", "d_state": 0}, "model.d_state: must be in [1, 4096], got 0"),
    ({"attention": "routed", "router_mixers": ["mha", "nope"]}, "routed: model.router_mixers must name distinct"),
    ({"attention": "routed", "router_mixers": ["ssm", "ssm"]}, "routed: model.router_mixers must name distinct"),
    ({"attention": "routed", "router_mixers": ["routed", "mha"]}, "routed: model.router_mixers must name distinct"),
    ({"attention": "routed", "router_top_k": 4}, "routed needs 1 <= model.router_top_k <= 3 (the mixers), got 4"),
    ({"attention": "routed", "router_mixers": ["mha", "sliding_window"]},
     "routed mixer sliding_window: sliding_window needs model.window > 0"),
    ({"attention": "routed", "router_temperature": 0.0}, "model.router_temperature: must be in (0, 1e6], got 0.0"),
]
INVALID_TRAIN = [
    ({"loss": "focal", "focal_gamma": -1.0}, {}, "train.focal_gamma: must be in [0, 100], got -1.0"),
    ({"loss": "label_smoothing", "label_smoothing": 1.0}, {}, "train.label_smoothing: must be in [0, 1), got 1.0"),
    ({"loss": "dpo", "dpo_beta": 0.0}, {"source": "p.jsonl"}, "train.dpo_beta: must be in (0, 1000], got 0.0"),
    ({"loss": "dpo"}, {}, "dpo trains on preference pairs: data.source must be a JSONL file"),
]


@pytest.mark.parametrize("model,reason", INVALID)
def test_invalid_model_combination_is_rejected(model, reason, tiny_config):
    with pytest.raises(ConfigError) as caught:
        tiny_config(**model)
    assert reason in str(caught.value)


@pytest.mark.parametrize("train,data,reason", INVALID_TRAIN)
def test_invalid_loss_setting_is_rejected(train, data, reason):
    with pytest.raises(ConfigError) as caught:
        catalog.from_dict({"train": train, "data": data, "budget": {"steps": 1}})
    assert reason in str(caught.value)


def test_invalid_combination_names_the_file(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("model: {attention: mla, position: alibi}\nbudget: {steps: 1}\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml: model\.attention: mla takes positions"):
        catalog.load(path)
