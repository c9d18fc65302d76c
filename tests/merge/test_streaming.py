"""The streamed task-vector engine (foundry/merge/streaming.py) against the whole-tensor definition
(task_vectors.task_merge(whole=True)), for every drop, with chunks small enough to split rows,
ties at the magnitude cut, and float64 inputs; and the radix selection against a sort."""
import pytest
import torch

from foundry.merge import streaming
from foundry.merge.task_vectors import task_merge

CASES = {   # drop, consensus, rescale, rescale_mode, extra per-model parameters
    "task_arithmetic": (None, False, False, "l1", {}),
    "ties": ("magnitude", True, False, "l1", {}),
    "ties rescaled": ("magnitude", True, True, "density", {}),
    "dare_linear": ("random", False, True, "l1", {}),
    "dare_ties": ("random", True, True, "density", {}),
    "breadcrumbs": ("outliers", False, False, "l1", {"gammas": [0.1, 0.05, 0.2]}),
    "breadcrumbs_ties": ("outliers", True, True, "l1", {"gammas": [0.1, 0.05, 0.2]}),
    "della": ("della", True, True, "l1", {"epsilons": [0.1, 0.2, 0.05]}),
    "della density": ("della", False, True, "density", {"epsilons": [0.1, 0.2, 0.05]}),
}


def inputs(shape, dtype, ties: bool):
    g = torch.Generator().manual_seed(3)
    base = torch.randn(shape, generator=g, dtype=dtype)
    if ties:   # few distinct values: many entries share the |delta| at each cut
        return base, [base + torch.randint(-3, 4, shape, generator=g).to(dtype) * 0.5 for _ in range(3)]
    return base, [base + torch.randn(shape, generator=g, dtype=dtype) * 0.1 for _ in range(3)]


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("shape, dtype, ties", [((37, 29), torch.float32, True), ((37, 29), torch.float32, False),
                                                ((301,), torch.float64, True), ((6, 5, 7), torch.float32, False)])
def test_streamed_equals_whole_tensor_definition(monkeypatch, case, shape, dtype, ties):
    drop, consensus, rescale, mode, extra = CASES[case]
    base, tensors = inputs(shape, dtype, ties)
    kwargs = dict(drop=drop, consensus=consensus, normalize=True, rescale=rescale, rescale_mode=mode,
                  lambda_=0.9, seed=5, name="blocks.0.w", **extra)
    args = (base, tensors, [0.5, 1.0, 0.7], [0.35, 0.6, 0.2])
    whole = task_merge(*args, whole=True, **kwargs)
    monkeypatch.setattr(streaming, "CHUNK", 64)                  # many chunks, rows split across them
    streamed = task_merge(*args, **kwargs)
    assert streamed.dtype == whole.dtype and streamed.shape == whole.shape
    if rescale and mode == "l1":     # the L1 sums are accumulated in float64 chunk by chunk
        torch.testing.assert_close(streamed, whole, rtol=1e-6, atol=1e-6)
    else:
        assert torch.equal(streamed, whole)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_select_finds_each_rank_like_a_sort(dtype):
    values = torch.randint(-50, 50, (1000,), generator=torch.Generator().manual_seed(1)).to(dtype) / 7
    keys = streaming.sortable(values, descending=True)
    chunks = lambda: iter(keys.split(97))
    ordered = torch.sort(keys, stable=True).values
    ranks = [0, 1, 499, 998, 999]
    for rank, (key, below) in zip(ranks, streaming.select(chunks, ranks)):
        assert key == int(ordered[rank]) and below == int((keys < key).sum())
