"""Every registered adapter and router: the skip path at init, training signal from the first
step, the token router's top-k sparsity, causal pooling, the balancing loss's minimum at uniform usage."""
import itertools

import pytest
import torch

from foundry.fusion.adapters import ADAPTERS
from foundry.fusion.layer import MoLLayer
from foundry.fusion.routers import ROUTERS
from foundry.fusion.spec import AdapterSettings, RouterSettings

GEN = torch.Generator().manual_seed(0)


@pytest.mark.parametrize("kind", sorted(ADAPTERS))
@pytest.mark.parametrize("d_in,d_out", [(16, 16), (16, 24), (24, 16)])
def test_adapter_is_its_skip_path_at_init_and_trains(kind, d_in, d_out):
    adapter = ADAPTERS[kind](d_in, d_out, AdapterSettings(kind=kind, bottleneck=4))
    x = torch.randn(2, 5, d_in, generator=GEN)
    y = adapter(x)
    k = min(d_in, d_out)
    assert y.shape == (2, 5, d_out)
    assert torch.equal(y[..., :k], x[..., :k]) and not y[..., k:].any()  # identity / rectangular identity
    y.square().sum().backward()
    grads = [p.grad for p in adapter.parameters() if p.grad is not None and p.grad.abs().sum() > 0]
    assert grads, "the zero-initialised output projection gets a gradient at step 0"


def _router(kind, n=3, top_k=1, width=8, init=1):
    return ROUTERS[kind](width, [f"e{i}" for i in range(n)], init, RouterSettings(kind=kind, top_k=top_k))


@pytest.mark.parametrize("kind", sorted(ROUTERS))
def test_router_rows_sum_to_one_and_start_on_the_init_expert(kind):
    router = _router(kind)
    h = torch.randn(2, 7, 8, generator=GEN)
    combined, weights = router(h)
    assert combined.shape == weights.shape == (2, 7, 3)
    assert torch.allclose(weights.sum(-1), torch.ones(2, 7)) and (weights >= 0).all()
    assert torch.equal(combined, torch.tensor([0.0, 1.0, 0.0]).expand(2, 7, 3))  # gate 0: the init path only
    assert set(router.stats) == {"entropy", "balance", "gate", "usage_e0", "usage_e1", "usage_e2"}
    with torch.no_grad():
        router.gate.fill_(1.0)
        torch.nn.init.normal_(router.score.weight, generator=GEN)
    combined, weights = router(h)
    assert torch.equal(combined, weights)
    assert router.row_usage.shape == (2, 3)


def test_token_router_keeps_exactly_top_k_experts_per_token():
    for top_k in (1, 2, 3):
        router = _router("token", n=4, top_k=top_k)
        with torch.no_grad():
            torch.nn.init.normal_(router.score.weight, std=2.0, generator=GEN)
        _, weights = router(torch.randn(3, 9, 8, generator=GEN))
        assert ((weights > 0).sum(-1) == top_k).all()
        assert torch.allclose(weights.sum(-1), torch.ones(3, 9))
    # top_k = 1 gives weights of exactly 1, yet the router still gets a gradient (straight-through)
    router = _router("token", n=4, top_k=1)
    _, weights = router(torch.randn(2, 5, 8, generator=GEN))
    assert set(weights.unique().tolist()) <= {0.0, 1.0}
    (weights * torch.randn(4, generator=GEN)).sum().backward()
    assert router.score.weight.grad.abs().sum() > 0


def test_pooled_router_decides_from_the_prefix_only():
    router = _router("pooled")
    with torch.no_grad():
        torch.nn.init.normal_(router.score.weight, generator=GEN)
    h = torch.randn(1, 10, 8, generator=GEN)
    later = h.clone()
    later[:, 6:] = torch.randn(1, 4, 8, generator=GEN)
    first = router(h)[1]
    second = router(later)[1]
    assert torch.allclose(first[:, :6], second[:, :6]) and not torch.allclose(first[:, 6:], second[:, 6:])
    _, whole = router(h)  # the same with a cache, token by token
    cache = {}
    steps = [router(h[:, t:t + 1], cache, t)[1] for t in range(10)]
    assert torch.allclose(torch.cat(steps, dim=1), whole, atol=1e-6)


@pytest.mark.parametrize("kind", sorted(ROUTERS))
def test_balancing_loss_is_minimal_for_uniform_usage(kind):
    n = 4
    router = _router(kind, n=n, top_k=n)  # top_k = n: the router's weights are its probabilities
    h = torch.randn(2, 6, 8, generator=GEN)

    def balance_for(probs):
        with torch.no_grad():
            router.score.bias.copy_(torch.log(torch.tensor(probs)))
        router(h)
        return router.stats["balance"].item()

    assert balance_for([0.25] * 4) == pytest.approx(1.0, abs=1e-6)
    for probs in itertools.islice(itertools.permutations([0.1, 0.2, 0.3, 0.4]), 5):
        assert balance_for(list(probs)) > 1.0 + 1e-3
    assert balance_for([0.97, 0.01, 0.01, 0.01]) == pytest.approx(n * (0.97 ** 2 + 3e-4), rel=1e-4)
    # and descending the balance loss alone from a skewed router reaches uniform usage
    torch.nn.init.normal_(router.score.weight, std=1.0, generator=GEN)
    optimizer = torch.optim.Adam(router.parameters(), lr=0.05)
    for _ in range(200):
        router(h)
        optimizer.zero_grad()
        (router.aux_loss / router.settings.balance_weight).backward()
        optimizer.step()
    router(h)
    assert router.stats["balance"].item() == pytest.approx(1.0, abs=2e-3)


def test_layer_gradient_reaches_every_path_while_the_output_is_the_init_path():
    torch.manual_seed(0)

    class Path(torch.nn.Module):  # a stand-in path: a linear map, with the attributes MoLLayer reads
        def __init__(self, name):
            super().__init__()
            self.expert, self.blocks, self.lin = name, [], torch.nn.Linear(8, 8)

        def forward(self, h, position, cache=None, start=0):
            return self.lin(h)

    paths = [Path("a"), Path("b")]
    layer = MoLLayer(paths, _router("pooled", n=2, init=0))
    h = torch.randn(2, 4, 8)
    out = layer(h, {"a": None, "b": None})
    assert torch.equal(out, paths[0](h, None))
    out.square().sum().backward()
    assert paths[1].lin.weight.grad.abs().sum() > 0 and layer.router.gate.grad is not None
