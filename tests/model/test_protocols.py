"""The component contract (foundry/model/protocols.py), checked for every registered component:
its kind's base class, its residual projections (the layers the GPT gives the scaled init, and
the only way its output reaches the residual stream), and a parameter budget for its kind.

    python -m pytest tests/model/test_protocols.py -q
"""
import math

import pytest
import torch
from torch import nn

from foundry.model import protocols
from foundry.model.gpt import GPT
from foundry.model.modules import BROKEN, REGISTRIES
from foundry.training.losses import LOSSES

KINDS = {"attention": protocols.Attention, "norm": protocols.Norm, "activation": protocols.MLP,
         "ffn": protocols.FeedForward, "position": protocols.Position}
EVERY = [(kind, name) for kind, registry in REGISTRIES.items() for name in registry]
WRITERS = [(kind, name) for kind, name in EVERY if kind in ("attention", "activation", "ffn")]


def ids(params):
    return [f"{kind}-{name}" for kind, name in params]


def test_every_component_file_imports():
    assert not BROKEN, BROKEN


@pytest.mark.parametrize("kind,name", EVERY, ids=ids(EVERY))
def test_component_subclasses_its_kind(kind, name):
    assert issubclass(REGISTRIES[kind][name], KINDS[kind])


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_loss_subclasses_the_loss_kind(name):
    assert issubclass(LOSSES[name], protocols.Loss) and LOSSES[name].objective in ("next_token", "preference")


def build(kind, name, cfg):
    """The component alone, as a Block would build it from the layer's settings."""
    m = cfg.model
    return REGISTRIES[kind][name](m.n_embd, m) if kind == "norm" else REGISTRIES[kind][name](m)


def run(module, kind, model_cfg, x):
    if kind == "attention":
        position = REGISTRIES["position"][model_cfg.position](model_cfg)
        return module(x, position)
    return module(x)


@pytest.mark.parametrize("kind,name", WRITERS, ids=ids(WRITERS))
def test_residual_projections_are_the_only_way_out(kind, name, tiny_config):
    """Zeroing the listed projections zeroes the output: they are the component's residual writes."""
    torch.manual_seed(0)
    cfg = tiny_config(kind, name)
    module = build(kind, name, cfg).eval()
    projections = module.residual_projections()
    assert projections and all(isinstance(p, nn.Linear) and p.out_features == cfg.model.n_embd for p in projections)
    owned = {id(m) for m in module.modules()}
    assert all(id(p) in owned for p in projections), "residual projections must be the component's own layers"
    x = torch.randn(2, cfg.model.block_size, cfg.model.n_embd)
    assert run(module, kind, cfg.model, x).abs().sum() > 0
    with torch.no_grad():
        for p in projections:
            p.weight.zero_()
            if p.bias is not None:
                p.bias.zero_()
    assert torch.all(run(module, kind, cfg.model, x) == 0)


@pytest.mark.parametrize("kind,name", WRITERS, ids=ids(WRITERS))
def test_gpt_gives_residual_projections_the_scaled_init(kind, name, tiny_config):
    torch.manual_seed(0)
    cfg = tiny_config(kind, name, n_embd=64, n_layer=8)
    model = GPT(cfg.model)
    scaled = 0.02 / math.sqrt(2 * cfg.model.n_layer)
    for block in model.blocks:
        component = block.attn if kind == "attention" else block.ffn
        for p in component.residual_projections():
            assert p.weight.std().item() == pytest.approx(scaled, rel=0.2)


def budget(kind, m) -> float:
    """Weights a component of this kind should hold, within 10%: an MLP about 2 mlp_ratio C^2
    (gated ones split the width in three), attention at most the 4 C^2 of full multi-head."""
    mlp = 2 * m.mlp_ratio * m.n_embd ** 2
    return {"activation": mlp, "ffn": mlp, "attention": 4 * m.n_embd ** 2}[kind]


def mixer_weights(name, m) -> int:
    """Exact weight-matrix counts of the token mixers that are not attention."""
    C, E, rank = m.n_embd, m.expand * m.n_embd, math.ceil(m.n_embd / 16)
    count = {"retention": 5 * C * C,  # q, k, v, the swish gate and the output (RetNet)
             "ssm": 2 * E * C + E * m.d_conv + E * (rank + 2 * m.d_state) + rank * E + E * C}  # A_log is flat
    if name == "routed":  # its mixers and the router
        return sum(mixer_weights(n, m) if n in count else 4 * C * C for n in m.router_mixers) + C * len(m.router_mixers)
    return count[name]


@pytest.mark.parametrize("kind,name", WRITERS, ids=ids(WRITERS))
def test_parameter_count_fits_the_kind(kind, name, tiny_config):
    cfg = tiny_config(kind, name, n_embd=64)
    m = cfg.model
    module = build(kind, name, cfg)
    weights = sum(p.numel() for p in module.parameters() if p.dim() >= 2)
    expected = budget(kind, m)
    if kind == "ffn" and name == "moe":  # n_experts MLPs and a router
        expected = m.n_experts * expected + m.n_embd * m.n_experts
        assert weights == pytest.approx(expected, rel=0.1)
    elif name in ("retention", "ssm", "routed"):
        assert weights == mixer_weights(name, m)
    elif kind == "attention":
        assert weights <= 1.1 * expected, f"{name}: {weights} weights, more than full attention's {expected}"
    else:
        assert weights == pytest.approx(expected, rel=0.1), f"{name}: {weights} weights, expected ~{expected}"


def test_position_counts_its_embedding_tables(tiny_config):
    learned = GPT(tiny_config("position", "learned").model)
    rope = GPT(tiny_config("position", "rope").model)
    m = learned.cfg
    assert learned.position.embedding_params() == m.block_size * m.n_embd
    assert learned.num_params(non_embedding=True) == rope.num_params(non_embedding=True)
