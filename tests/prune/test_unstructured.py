"""Each pruning method's mask against its definition on constructed weights, exact counts per
scope, the N:M pattern and its validator."""
import pytest
import torch
import torch.nn.functional as F

from foundry import catalog
from foundry.errors import UserError
from foundry.model.gpt import GPT
from foundry.prune.scores import PRUNE_METHODS, parse_pattern
from foundry.prune.select import global_masks, group_mask, nm_mask, nm_violations
from foundry.prune.unstructured import prunable, prune_unstructured
from foundry.weights.masks import mask_of


def tiny_gpt(seed=0, **model):
    cfg = catalog.from_dict({"model": {"n_layer": 2, "n_head": 2, "n_embd": 16, "block_size": 8, "vocab_size": 32,
                                       **model}, "budget": {"steps": 1}})
    torch.manual_seed(seed)
    return GPT(cfg.model)


def batch(seed=1, n=6):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 32, (n, 8), generator=g), torch.randint(0, 32, (n, 8), generator=g)


def test_group_masks_remove_exactly_the_lowest_scores():
    scores = torch.tensor([[4.0, 1.0, 3.0, 2.0], [0.5, 0.6, 0.1, 9.0]])
    assert group_mask(scores, 0.5, "row").tolist() == [[True, False, True, False], [False, True, False, True]]
    assert group_mask(scores, 0.5, "layer").tolist() == [[True, False, True, True], [False, False, False, True]]
    both = global_masks({"a": scores[:1], "b": scores[1:], "c": torch.tensor([[10.0, 11.0]])}, 0.5)
    assert both["a"].tolist() == [[True, False, True, False]] and both["b"].tolist() == [[False, False, False, True]]
    assert both["c"].tolist() == [[True, True]]
    ties = torch.ones(1, 4)
    assert group_mask(ties, 0.5, "row").tolist() == [[False, False, True, True]]  # stable: lower index goes


def test_nm_mask_keeps_the_n_best_of_every_m_and_the_validator_checks_it():
    scores = torch.tensor([[1.0, 4.0, 3.0, 2.0, 8.0, 5.0, 6.0, 7.0]])
    keep = nm_mask(scores, 2, 4)
    assert keep.tolist() == [[False, True, True, False, True, False, False, True]]
    assert nm_violations(scores * keep, 2, 4) == 0
    dense_group = (scores * keep).clone()
    dense_group[0, 0] = 1.0
    assert nm_violations(dense_group, 2, 4) == 1
    assert nm_violations(torch.ones(2, 6), 2, 4) > 0  # the width is not a multiple of M
    with pytest.raises(ValueError, match="multiple of M=4"):
        nm_mask(torch.ones(1, 6), 2, 4)
    assert parse_pattern("2:4") == (2, 4) and parse_pattern("") is None
    for bad in ("4:2", "2-4", "a:b", "0:4"):
        with pytest.raises(ValueError):
            parse_pattern(bad)


def independent_scores(method, model, x, y) -> dict:
    """Each method's definition computed here with plain autograd and hooks, not the library's helpers."""
    modules = prunable(model)
    if method == "magnitude":
        return {n: m.weight.abs() for n, m in modules.items()}
    if method == "saliency":
        model.zero_grad()
        F.cross_entropy(model(x).flatten(0, 1), y.flatten()).backward()
        scores = {n: (m.weight * m.weight.grad).abs() for n, m in modules.items()}
        model.zero_grad()
        return scores
    inputs = {}

    def keep(name):
        def hook(module, args, output):
            inputs[name] = args[0].detach()
        return hook
    hooks = [m.register_forward_hook(keep(n)) for n, m in modules.items()]
    model(x)
    for h in hooks:
        h.remove()
    return {n: m.weight.abs() * inputs[n].flatten(0, 1).norm(dim=0)[None, :] for n, m in modules.items()}


@pytest.mark.parametrize("method", sorted(PRUNE_METHODS))
def test_each_method_masks_what_its_definition_ranks_lowest(method):
    model, x, y = tiny_gpt(), *batch()
    expected = independent_scores(method, model, x, y)
    scope = PRUNE_METHODS[method].scope
    report = prune_unstructured(model, method, 0.5, scope=scope, x=x, y=y)
    first_block = [n for n in expected if n.startswith("blocks.0.")]  # wanda goes block by block: block 0 sees dense inputs
    for name in (first_block if method == "wanda" else expected):
        want = group_mask(expected[name], 0.5, scope)
        got = mask_of(model.get_submodule(name))
        assert (got == want).float().mean() > 0.99, name  # float ties aside, the same weights go
        assert (model.get_submodule(name).weight[~got] == 0).all()
    assert report["sparsity"] == pytest.approx(0.5) and report["scope"] == scope


@pytest.mark.parametrize("scope", ["row", "layer", "global"])
def test_every_scope_gives_the_exact_sparsity(scope):
    model, (x, y) = tiny_gpt(), batch()
    report = prune_unstructured(model, "wanda", 0.25, scope=scope, x=x, y=y)
    assert report["sparsity"] == pytest.approx(0.25)
    if scope != "global":
        assert all(share == pytest.approx(0.25) for share in report["layers"].values())
    zeros = sum(int((m.weight == 0).sum()) for m in prunable(model).values())
    assert zeros >= sum(int((~mask_of(m)).sum()) for m in prunable(model).values())


@pytest.mark.parametrize("method", sorted(PRUNE_METHODS))
def test_two_of_four_with_every_method(method):
    model, (x, y) = tiny_gpt(), batch()
    report = prune_unstructured(model, method, 0.0, pattern="2:4", x=x, y=y)
    assert report["sparsity"] == pytest.approx(0.5)
    for m in prunable(model).values():
        assert nm_violations(m.weight, 2, 4) == 0


def test_pruning_again_keeps_the_earlier_masks_and_errors_are_clear():
    model, (x, y) = tiny_gpt(), batch()
    prune_unstructured(model, "magnitude", 0.3)
    first = {n: mask_of(m).clone() for n, m in prunable(model).items()}
    prune_unstructured(model, "wanda", 0.5, x=x, y=y)
    for n, m in prunable(model).items():
        assert not (mask_of(m) & ~first[n]).any()
    with pytest.raises(UserError, match="calibration"):
        prune_unstructured(tiny_gpt(), "wanda", 0.5)
    with pytest.raises(UserError, match="no global scope"):
        prune_unstructured(tiny_gpt(), "magnitude", 0.5, pattern="2:4", scope="global")
    with pytest.raises(UserError, match="valid: magnitude, saliency, wanda"):
        prune_unstructured(tiny_gpt(), "random", 0.5)
