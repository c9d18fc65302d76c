"""Each merge method against its closed form, and every registered method through its registry entry."""
import math

import pytest
import torch

from foundry.merge import (METHODS, TensorJob, breadcrumbs, dare_linear, dare_ties, della, linear, model_stock,
                           passthrough, slerp, task_arithmetic, ties)
from foundry.merge.method import REQUIRED
from foundry.merge.task_vectors import magnitude, outliers, rank_window


def randn(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


# ---------------------------------------------------------------- slerp
def test_slerp_returns_its_endpoints_exactly():
    a, b = randn(16, 8, seed=1), randn(16, 8, seed=2)
    assert torch.equal(slerp(a, b, 0.0), a)
    assert torch.equal(slerp(a, b, 1.0), b)


def test_slerp_preserves_the_norm_of_orthogonal_inputs_at_half():
    a = torch.tensor([3.0, 0.0, 0.0, 0.0])
    b = torch.tensor([0.0, 0.0, 3.0, 0.0])
    mid = slerp(a, b, 0.5)
    assert torch.linalg.vector_norm(mid).item() == pytest.approx(3.0, rel=1e-6)
    assert torch.allclose(mid, torch.tensor([3 / math.sqrt(2), 0, 3 / math.sqrt(2), 0]))


def test_slerp_follows_the_arc():
    a, b = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])
    angle = 0.3 * math.pi / 2
    assert torch.allclose(slerp(a, b, 0.3), torch.tensor([math.cos(angle), math.sin(angle)]), atol=1e-6)


def test_slerp_falls_back_to_linear_for_nearly_parallel_inputs():
    a = randn(32, seed=3)
    b = 2 * a + 1e-4 * randn(32, seed=4)                 # cos θ > 0.9995
    assert torch.allclose(slerp(a, b, 0.25), 0.75 * a + 0.25 * b, atol=1e-6)


# ---------------------------------------------------------------- linear, task arithmetic
def test_linear_is_linear_in_its_weights():
    a, b, c = randn(5, 3, seed=1), randn(5, 3, seed=2), randn(5, 3, seed=3)
    w, v = [0.2, -1.5, 3.0], [1.0, 0.5, -0.25]
    f = lambda weights: linear([a, b, c], weights, normalize=False)
    assert torch.allclose(f(w), 0.2 * a - 1.5 * b + 3.0 * c, atol=1e-6)
    assert torch.allclose(f([x + y for x, y in zip(w, v)]), f(w) + f(v), atol=1e-5)
    assert torch.allclose(linear([a, b, c], [1, 1, 2]), (a + b + 2 * c) / 4, atol=1e-6)
    assert torch.allclose(linear([a, b], [2, 6]), linear([a, b], [0.25, 0.75]), atol=1e-6)


def test_task_arithmetic_is_linear_in_its_weights():
    base, a, b = randn(4, 6, seed=1), randn(4, 6, seed=2), randn(4, 6, seed=3)
    f = lambda weights, lam=1.0: task_arithmetic(base, [a, b], weights, lambda_=lam) - base
    assert torch.allclose(task_arithmetic(base, [a, b], [0.5, 2.0]), base + 0.5 * (a - base) + 2.0 * (b - base), atol=1e-5)
    assert torch.allclose(f([1.5, -0.5]), f([1.0, 0.0]) * 1.5 + f([0.0, 1.0]) * -0.5, atol=1e-5)
    assert torch.allclose(f([1.0, 1.0], lam=0.3), 0.3 * f([1.0, 1.0]), atol=1e-6)
    normalized = task_arithmetic(base, [a, b], [1.0, 3.0], normalize=True)
    assert torch.allclose(normalized, base + (a - base) / 4 + 3 * (b - base) / 4, atol=1e-5)


# ---------------------------------------------------------------- ties
def test_ties_sign_election_and_disjoint_mean_by_hand():
    base = torch.tensor([0.5, -1.0, 2.0, 0.0, 1.0])
    deltas = [torch.tensor([3.0, -1.0, 2.0, 0.5, -4.0]),     # trimmed to 3 of 5: [3, 0, 2, 0, -4]
              torch.tensor([-2.0, -3.0, 1.0, 0.1, 1.5]),     #                   [-2, -3, 0, 0, 1.5]
              torch.tensor([1.0, 3.0, -5.0, 0.2, 2.0])]      #                   [0, 3, -5, 0, 2]
    models = [base + d for d in deltas]
    # equal weights: signs by mass +, + (0 counts as +), -, + (nothing left), -; the agreeing entries' mean
    merged = ties(base, models, [1, 1, 1], [0.6, 0.6, 0.6])
    assert torch.allclose(merged, base + torch.tensor([3.0, 3.0, -5.0, 0.0, -4.0]), atol=1e-6)
    # weights 1, 0.5, 2: weighted deltas [3,0,2,0,-4], [-1,-1.5,0,0,0.75], [0,6,-10,0,4]
    # entry 4: mass -4 + 0.75 + 4 > 0, agreeing 0.75 and 4 over weights 0.5 + 2 -> 1.9
    merged = ties(base, models, [1, 0.5, 2], [0.6, 0.6, 0.6])
    assert torch.allclose(merged, base + torch.tensor([3.0, 3.0, -5.0, 0.0, 1.9]), atol=1e-6)
    unnormalized = ties(base, models, [1, 0.5, 2], [0.6, 0.6, 0.6], normalize=False)
    assert torch.allclose(unnormalized, base + torch.tensor([3.0, 6.0, -10.0, 0.0, 4.75]), atol=1e-6)


def test_magnitude_trim_keeps_the_largest_and_at_least_one():
    x = torch.tensor([0.1, -5.0, 2.0, -0.3, 4.0, 0.0])
    assert torch.equal(magnitude(x, 0.5), torch.tensor([0.0, -5.0, 2.0, 0.0, 4.0, 0.0]))
    assert torch.equal(magnitude(x, 0.01), torch.tensor([0.0, -5.0, 0.0, 0.0, 0.0, 0.0]))
    assert torch.equal(magnitude(x, 1.0), x)


@pytest.mark.parametrize("start, count", [(0, 1), (0, 37), (50, 100), (120, 80), (199, 5), (0, 200)])
def test_rank_window_is_the_stable_sorts_window_even_with_many_ties(start, count):
    values = torch.randint(0, 9, (200,), generator=torch.Generator().manual_seed(start + count)).float()
    order = torch.sort(values, stable=True).indices
    expected = torch.zeros(200, dtype=torch.bool)
    expected[order[start:start + count]] = True
    assert torch.equal(rank_window(values, start, count), expected)


# ---------------------------------------------------------------- DARE
def test_dare_expected_value_is_the_input_and_kept_fraction_is_the_density():
    base, model = torch.zeros(400), randn(400, seed=5)
    density, seeds = 0.3, 3000
    total, kept = torch.zeros(400, dtype=torch.float64), 0
    for seed in range(seeds):
        out = dare_linear(base, [model], [1.0], [density], seed=seed, name="w", rescale_mode="density")
        total += out.double()
        kept += int((out != 0).sum())
    # each entry's mean over the seeds: std of one draw is |x| sqrt((1-p)/p); 5 standard errors
    tolerance = 5 * model.abs().double() * math.sqrt((1 - density) / density / seeds)
    assert ((total / seeds - model.double()).abs() <= tolerance + 1e-9).all()
    fraction, n = kept / (400 * seeds), 400 * seeds
    assert abs(fraction - density) < 5 * math.sqrt(density * (1 - density) / n)


def test_dare_l1_rescale_keeps_the_task_vectors_l1_norm():
    base, model = randn(64, 64, seed=1), randn(64, 64, seed=2)
    out = dare_linear(base, [model], [1.0], [0.2], seed=7, name="x")
    delta = out - base
    assert (delta != 0).float().mean().item() == pytest.approx(0.2, abs=0.02)
    assert delta.abs().sum().item() == pytest.approx((model - base).abs().sum().item(), rel=1e-4)
    assert torch.equal((delta == 0), dare_linear(base, [model], [1.0], [0.2], seed=7, name="x", rescale=False) - base == 0)


def test_dare_masks_depend_only_on_seed_name_and_input():
    base, a, b = torch.zeros(1000), randn(1000, seed=1), randn(1000, seed=2)
    first = dare_ties(base, [a, b], [1, 1], [0.5, 0.5], seed=3, name="blocks.0.w")
    assert torch.equal(first, dare_ties(base, [a, b], [1, 1], [0.5, 0.5], seed=3, name="blocks.0.w"))
    assert not torch.equal(first, dare_ties(base, [a, b], [1, 1], [0.5, 0.5], seed=4, name="blocks.0.w"))
    assert not torch.equal(first, dare_ties(base, [a, b], [1, 1], [0.5, 0.5], seed=3, name="blocks.1.w"))


def test_della_keeps_the_density_and_favours_large_entries():
    base, model = torch.zeros(20, 500), randn(20, 500, seed=3)
    out = della(base, [model], [1.0], [0.5], [0.3], seed=1, name="w", rescale=False)
    kept = out != 0
    assert kept.float().mean().item() == pytest.approx(0.5, abs=0.02)
    order = model.abs().argsort(dim=1)
    small, large = kept.gather(1, order[:, :100]).float().mean(), kept.gather(1, order[:, -100:]).float().mean()
    assert small.item() == pytest.approx(0.2 + 0.3 * 0.2, abs=0.05)      # p rises from 0.2 to 0.8 with rank
    assert large.item() == pytest.approx(0.8 - 0.3 * 0.2, abs=0.05)


# ---------------------------------------------------------------- breadcrumbs
def test_breadcrumbs_drops_exactly_the_requested_tails():
    values = torch.randperm(100, generator=torch.Generator().manual_seed(0)).float() + 1   # |x| = 1..100
    signs = torch.where(torch.arange(100) % 3 == 0, -1.0, 1.0)
    delta = (values * signs).reshape(10, 10)
    kept = outliers(delta, density=0.8, gamma=0.1)
    expected = torch.where((values > 10) & (values <= 90), values * signs, 0.0).reshape(10, 10)
    assert torch.equal(kept, expected)
    base = randn(10, 10)
    assert torch.allclose(breadcrumbs(base, [base + delta], [1.0], [0.8], [0.1]), base + expected)
    # density + gamma > 1: fewer of the largest are dropped so that density is kept
    assert int((outliers(delta, 0.95, 0.1) != 0).sum()) == 95


# ---------------------------------------------------------------- model stock, passthrough
def test_model_stock_matches_its_formula():
    theta = 1.0
    base = torch.tensor([1.0, 2.0, 3.0])
    a = base + torch.tensor([2.0, 0.0, 0.0])
    b = base + 2.0 * torch.tensor([math.cos(theta), math.sin(theta), 0.0])
    t = 2 * math.cos(theta) / (1 + math.cos(theta))
    expected = t * (a + b) / 2 + (1 - t) * base
    assert torch.allclose(model_stock(base, [a, b]), expected, atol=1e-6)
    c = base - 2.0 * torch.tensor([1.0, 0.0, 0.0])            # opposed to a: 1 + cos θ = 0 -> the base
    assert torch.equal(model_stock(base, [a, c]), base)


def test_model_stock_filter_wise_uses_one_angle_per_row():
    base = torch.zeros(2, 2)
    a, b = torch.tensor([[1.0, 0.0], [1.0, 0.0]]), torch.tensor([[0.0, 1.0], [1.0, 0.0]])
    out = model_stock(base, [a, b], filter_wise=True)
    assert torch.allclose(out[0], torch.zeros(2))               # orthogonal row: t = 0
    assert torch.allclose(out[1], torch.tensor([1.0, 0.0]))     # parallel row: t = 1


def test_passthrough_reproduces_its_input_bitwise():
    x = randn(7, 3).to(torch.bfloat16)
    assert passthrough(x) is x
    assert torch.equal(passthrough(x, 0.5), x * 0.5)


# ---------------------------------------------------------------- every registered method
def default_job(method, n_models: int, seed: int = 0) -> TensorJob:
    base = randn(8, 6, seed=10) if method.base else None
    tensors = [randn(8, 6, seed=11 + i) for i in range(n_models - (1 if method.base else 0))]
    fill = {float: 0.5, bool: True, str: None}
    values = lambda spec: {k: (fill[p.type] if p.default is REQUIRED else p.default) for k, p in spec.items()}
    return TensorJob("blocks.0.attn.q_proj.weight", base, tensors, values(method.shared),
                     [values(method.per_model) for _ in tensors], seed)


@pytest.mark.parametrize("name", sorted(METHODS))
def test_every_method_merges_with_its_defaults_deterministically(name):
    method = METHODS[name]
    n = max(method.min_models, min(3, method.max_models or 3))
    job = default_job(method, n)
    out = method.run(job)
    assert out.shape == (8, 6) and out.dtype == torch.float32 and torch.isfinite(out).all()
    assert torch.equal(out, method.run(default_job(method, n)))
    inputs = ([job.base] if job.base is not None else []) + job.tensors
    assert all(not torch.equal(out, x) for x in inputs) or name == "passthrough"
