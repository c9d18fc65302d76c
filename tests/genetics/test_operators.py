"""Each operator against its definition: SLERP endpoints and per-layer t, uniform and layer-wise
crossover, Gaussian mutation's scale and fraction, the 1/5 rule and self-adaptive sigma on
constructed success rates, tournament = best of its sample, truncation, elitism; and one
parametrized test over every registered operator and selection (shapes, determinism, record)."""
import numpy as np
import pytest
import torch

from foundry.genetics.evolve import success_rate
from foundry.genetics.individual import Individual
from foundry.genetics.operators import (OPERATORS, SELECTIONS, Context, elites, mutation_sigma, one_fifth_update,
                                        tournament, truncation)
from foundry.merge import slerp

N_LAYER = 3


def state(seed: int) -> dict:
    g = torch.Generator().manual_seed(seed)
    tensors = {"wte.weight": torch.randn(11, 8, generator=g), "norm_f.weight": torch.ones(8),
               "blocks.0.attn.weight_mask": torch.ones(8, 8, dtype=torch.bool)}
    for i in range(N_LAYER):
        tensors[f"blocks.{i}.attn.c_proj.weight"] = torch.randn(8, 8, generator=g)
        tensors[f"blocks.{i}.norm1.weight"] = 1 + 0.1 * torch.randn(8, generator=g)
    return tensors


def ctx(seed: int = 0, **kw) -> Context:
    return Context(torch.Generator().manual_seed(seed), N_LAYER, **kw)


def params(name: str, **over) -> dict:
    return {**{k: p.default for k, p in OPERATORS[name].params.items()}, **over}


def population(fitnesses) -> list:
    return [Individual(f"i{i}", 0, fitness=f, status="scored" if f is not None else "failed")
            for i, f in enumerate(fitnesses)]


@pytest.mark.parametrize("t,parent", [(0.0, "a"), (1.0, "b")])
def test_slerp_endpoints_are_the_parents(t, parent):
    a, b = state(1), state(2)
    child, record = OPERATORS["slerp"].fn(a, b, ctx(), params("slerp", t=t))
    for name, x in child.items():
        expected = {"a": a, "b": b}[parent][name] if x.is_floating_point() else a[name]
        torch.testing.assert_close(x, expected, rtol=1e-5, atol=1e-6)
    assert record["t_layers"] == [t] * N_LAYER


def test_slerp_takes_t_per_layer_from_a_gradient_and_is_the_merge_slerp():
    a, b = state(1), state(2)
    child, record = OPERATORS["slerp"].fn(a, b, ctx(), params("slerp", t=[0.0, 1.0]))
    assert record["t_layers"] == [0.0, 0.5, 1.0]          # layer i at i / (n_layer - 1)
    name = "blocks.1.attn.c_proj.weight"
    torch.testing.assert_close(child[name], slerp(a[name], b[name], 0.5))
    torch.testing.assert_close(child["blocks.0.attn.c_proj.weight"], a["blocks.0.attn.c_proj.weight"])
    torch.testing.assert_close(child["blocks.2.attn.c_proj.weight"], b["blocks.2.attn.c_proj.weight"], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(child["wte.weight"], a["wte.weight"])   # outside the layers: t = 0 (mergekit)


def test_slerp_jitter_moves_each_layer_within_its_bound():
    a, b = state(1), state(2)
    _, record = OPERATORS["slerp"].fn(a, b, ctx(5), params("slerp", t=0.5, jitter=0.2))
    assert all(0.3 - 1e-9 <= t <= 0.7 + 1e-9 for t in record["t_layers"])
    assert len(set(record["t_layers"])) == N_LAYER        # drawn per layer


def test_uniform_crossover_takes_each_entry_from_one_parent():
    a, b = state(1), state(2)
    child, _ = OPERATORS["uniform"].fn(a, b, ctx(), params("uniform", p=0.5))
    big = "wte.weight"
    from_a, from_b = child[big] == a[big], child[big] == b[big]
    assert bool((from_a | from_b).all()) and 0.3 < from_b.float().mean() < 0.7
    for p, parent in ((0.0, a), (1.0, b)):
        child, _ = OPERATORS["uniform"].fn(a, b, ctx(), params("uniform", p=p))
        assert all(torch.equal(child[k], parent[k]) for k in a if a[k].is_floating_point())


def test_layerwise_crossover_takes_whole_layers_as_recorded():
    a, b = state(1), state(2)
    child, record = OPERATORS["layerwise"].fn(a, b, ctx(3), params("layerwise", p=0.5))
    for i in range(N_LAYER):
        parent = b if i in record["layers_from_b"] else a
        for name in (f"blocks.{i}.attn.c_proj.weight", f"blocks.{i}.norm1.weight"):
            assert torch.equal(child[name], parent[name])
    assert torch.equal(child["wte.weight"], (b if record["outside_from_b"] else a)["wte.weight"])


def test_gaussian_mutation_scale_and_fraction():
    a = {"w": torch.randn(400, 400, generator=torch.Generator().manual_seed(0)) * 3.0}
    child, record = OPERATORS["gaussian"].fn(a, None, ctx(), params("gaussian", sigma=0.1, adapt="none"))
    noise = child["w"] - a["w"]
    rms = a["w"].pow(2).mean().sqrt()
    assert abs(float(noise.std() / rms) - 0.1) < 0.005 and record["sigma"] == 0.1
    child, record = OPERATORS["gaussian"].fn(a, None, ctx(), params("gaussian", sigma=0.1, fraction=0.25, adapt="none"))
    assert abs(float((child["w"] != a["w"]).float().mean()) - 0.25) < 0.01 and record["fraction"] == 0.25
    unchanged, _ = OPERATORS["gaussian"].fn(a, None, ctx(), params("gaussian", sigma=0.0, adapt="none"))
    assert torch.equal(unchanged["w"], a["w"])


@pytest.mark.parametrize("rate,direction", [(0.6, 1), (0.05, -1), (0.2, 0)])
def test_one_fifth_rule_adapts_in_the_right_direction(rate, direction):
    assert np.sign(one_fifth_update(0.01, rate) - 0.01) == direction


def test_success_rate_of_a_constructed_generation_drives_sigma():
    def child(fitness, parent_fitness):
        return Individual("c", 1, status="scored", fitness=fitness, extra={"mutated": True, "parent_fitness": parent_fitness})
    improving = [child(1.0, 0.0)] * 3 + [child(-1.0, 0.0)]      # 3/4 beat their parent
    failing = [child(-1.0, 0.0)] * 9 + [child(1.0, 0.0)]        # 1/10
    assert success_rate(improving) == 0.75 and success_rate(failing) == 0.1
    assert one_fifth_update(0.02, success_rate(improving)) > 0.02 > one_fifth_update(0.02, success_rate(failing))
    assert success_rate([Individual("e", 0, status="scored", fitness=3.0)]) is None   # elites carry no mutation


def test_self_adaptive_sigma_is_the_parents_times_a_lognormal_step():
    p = params("gaussian", adapt="self", tau=0.3)
    draws = [mutation_sigma(ctx(seed, parent_sigma=0.05), p) for seed in range(200)]
    logs = np.log(np.array(draws) / 0.05)
    assert abs(logs.mean()) < 0.06 and abs(logs.std() - 0.3) < 0.05
    assert mutation_sigma(ctx(0, parent_sigma=0.05), {**p, "tau": 0.0}) == 0.05
    assert mutation_sigma(ctx(0, sigma=0.7), params("gaussian", adapt="one_fifth")) == 0.7
    assert mutation_sigma(ctx(0, sigma=0.7), params("gaussian", adapt="none", sigma=0.01)) == 0.01


def test_tournament_picks_the_best_of_its_sample():
    people = population([0.5, 2.0, -1.0, 3.0, 1.0, None, 0.0])
    for seed in range(20):
        picked = tournament(people, np.random.default_rng(seed), {"k": 3})
        sample = np.random.default_rng(seed).choice(len(people), size=3, replace=False)
        assert picked is max((people[i] for i in sample), key=lambda ind: ind.rank_key)
    assert tournament(people, np.random.default_rng(0), {"k": len(people)}) is people[3]


def test_truncation_draws_only_from_the_top_share():
    people = population([0.5, 2.0, -1.0, 3.0, 1.0, None])
    picked = {truncation(people, np.random.default_rng(s), {"keep": 0.3}).id for s in range(50)}
    assert picked == {"i3", "i1"}


def test_elitism_keeps_the_best_unchanged_and_never_a_failed_one():
    people = population([0.5, 2.0, None, 3.0])
    kept = elites(people, 2)
    assert kept == [people[3], people[1]] and kept[0] is people[3]
    assert elites(population([None, None]), 1) == []


@pytest.mark.parametrize("name", sorted(OPERATORS))
def test_every_operator_keeps_names_shapes_dtypes_and_is_deterministic(name):
    a, b = state(1), state(2)
    second = b if OPERATORS[name].kind == "crossover" else None
    child, record = OPERATORS[name].fn(a, second, ctx(7), params(name))
    again, _ = OPERATORS[name].fn(a, second, ctx(7), params(name))
    assert set(child) == set(a) and isinstance(record, dict)
    for key in a:
        assert child[key].shape == a[key].shape and child[key].dtype == a[key].dtype
        assert torch.equal(child[key], again[key])
    assert torch.equal(child["blocks.0.attn.weight_mask"], a["blocks.0.attn.weight_mask"])   # masks untouched
    assert all(0 <= p.default if isinstance(p.default, (int, float)) else p.default in p.choices
               for p in OPERATORS[name].params.values())


@pytest.mark.parametrize("name", sorted(SELECTIONS))
def test_every_selection_returns_a_scored_member(name):
    people = population([0.5, None, 3.0, 1.0])
    defaults = {k: p.default for k, p in SELECTIONS[name].params.items()}
    for seed in range(10):
        picked = SELECTIONS[name].fn(people, np.random.default_rng(seed), defaults)
        assert picked in people
