"""The task-vector family merged chunk by chunk: what `task_merge` runs.

    out = streamed_combine(base, tensors, weights, [Magnitude(0.5), Magnitude(0.3)], consensus=True,
                           normalize=True)

task_vectors.combine is the definition, on whole tensors: it stacks the N task vectors (N, *shape)
and sign-elects over the stack, so a merge of three models holds about nine copies of its largest
tensor. This form walks the flattened tensors in chunks of CHUNK entries (whole rows, for DELLA's
per-row ranks) and holds only the inputs, the output and a few chunk-sized buffers.

What needs the whole tensor is found first, in passes over the chunks:
  - the magnitude cut (TIES, and breadcrumbs' two cuts) is an order statistic of |delta|, found by
    radix selection on the float's bits (16 bits a pass: a 65536-bin histogram), ties at the cut
    broken by position as task_vectors.rank_window breaks them;
  - the L1 rescale's sums of |delta| before and after the drop (float64 accumulators).
Random masks are drawn chunk after chunk from the same generator: the CPU generator's stream does
not depend on how it is split, so the masks are those of the whole-tensor form (tested).
tests/merge/test_streaming.py checks this form against task_vectors.combine for every drop.
"""
from __future__ import annotations

import torch

from foundry.merge.method import work_dtype

CHUNK = 1 << 22          # entries per chunk: 16 MiB of float32 per buffer
DIGIT = 16               # bits per radix pass


def sortable(delta: torch.Tensor, descending: bool) -> torch.Tensor:
    """Integer keys in the order of |delta| (reversed when descending): a float's bits, read as a
    signed integer, order non-negative floats exactly (|x| is never -0.0)."""
    bits = delta.abs().view(torch.int64 if delta.dtype == torch.float64 else torch.int32)
    return -bits if descending else bits


def select(key_chunks, ranks: list[int]) -> list[tuple[int, int]]:
    """(key, number of keys below it) for each 0-based rank in the ascending order of the keys:
    one pass per 16-bit digit, top digit first; key_chunks() yields the keys chunk by chunk."""
    prefixes, below = [None] * len(ranks), [0] * len(ranks)
    bits, level = None, 0
    while bits is None or level < bits // DIGIT:
        counts = [torch.zeros(1 << DIGIT, dtype=torch.int64) for _ in ranks]
        for keys in key_chunks():
            bits = bits or keys.element_size() * 8
            shift = bits - DIGIT * (level + 1)
            if level == 0:                           # the top digit carries the sign; one histogram serves all
                counts[0] += torch.bincount((keys >> shift) + (1 << (DIGIT - 1)), minlength=1 << DIGIT)
                continue
            for r in range(len(ranks)):
                digits = keys[(keys >> (shift + DIGIT)) == prefixes[r]] >> shift & ((1 << DIGIT) - 1)
                counts[r] += torch.bincount(digits, minlength=1 << DIGIT)
        if bits is None:                             # no keys at all
            break
        counts = [counts[0]] * len(ranks) if level == 0 else counts
        for r, rank in enumerate(ranks):
            cumulative = counts[r].cumsum(0)
            digit = int(torch.searchsorted(cumulative, rank - below[r], right=True))
            below[r] += int(cumulative[digit - 1]) if digit else 0
            prefixes[r] = digit - (1 << (DIGIT - 1)) if level == 0 else (prefixes[r] << DIGIT) | digit
        level += 1
    return list(zip(prefixes, below))


class RankWindow:
    """The entries whose rank in the stable ascending order of their keys lies in [start, end):
    keys strictly between the window's edge keys, and at each edge the equal keys whose
    position among the equal ones (counted across chunks, in order) falls inside the window."""

    def __init__(self, key_chunks, n: int, start: int, count: int):
        self.empty, self.edges = count <= 0 or start >= n, {}
        self.begin()
        if self.empty:
            return
        end = min(n, start + count)
        (self.low, below_low), (self.high, below_high) = select(key_chunks, [start, end - 1])
        self.edges = {self.low: (max(0, start - below_low), end - below_low),
                      self.high: (max(0, start - below_high), end - below_high)}
        self.begin()

    def begin(self):
        self.seen = dict.fromkeys(self.edges, 0)

    def mask(self, keys: torch.Tensor) -> torch.Tensor:
        if self.empty:
            return torch.zeros(keys.shape, dtype=torch.bool, device=keys.device)
        mask = (keys > self.low) & (keys < self.high)
        for edge, (first, stop) in self.edges.items():
            equal = (keys == edge).nonzero().reshape(-1)
            seen = self.seen[edge]
            mask[equal[max(0, first - seen):max(0, stop - seen)]] = True
            self.seen[edge] = seen + len(equal)
        return mask


class Keep:
    """A task vector kept whole; the base of the sparsifiers. prepare(deltas, n) sees the whole
    task vector (deltas() yields its chunks), begin() starts a pass, apply(delta) sparsifies a chunk."""
    density = 1.0

    def prepare(self, deltas, n: int) -> None:
        pass

    def begin(self) -> None:
        pass

    def apply(self, delta: torch.Tensor) -> torch.Tensor:
        return delta


class Magnitude(Keep):
    """TIES' trim: the max(1, int(density * n)) entries of largest |x| (earlier wins a tie)."""

    def __init__(self, density: float):
        self.density = density

    def prepare(self, deltas, n):
        self.window = None
        if 0 < self.density < 1 and n:
            keys = lambda: (sortable(d, descending=True) for d in deltas())
            self.window = RankWindow(keys, n, 0, max(1, int(self.density * n)))

    def begin(self):
        if self.window:
            self.window.begin()

    def apply(self, delta):
        if self.density >= 1:
            return delta
        if self.window is None:
            return torch.zeros_like(delta)
        return delta * self.window.mask(sortable(delta, descending=True))


class Outliers(Magnitude):
    """Model breadcrumbs: drop the int(gamma * n) largest |x| and the smallest beyond those, keeping
    int(density * n) (fewer of the largest dropped when density + gamma > 1)."""

    def __init__(self, density: float, gamma: float):
        self.density, self.gamma = density, gamma

    def prepare(self, deltas, n):
        keep, top = int(self.density * n), int(self.gamma * n)
        keys = lambda: (sortable(d, descending=False) for d in deltas())
        self.window = RankWindow(keys, n, max(0, n - keep - top), keep) if self.density < 1 else None

    def apply(self, delta):
        if self.density >= 1:
            return delta
        return delta * self.window.mask(sortable(delta, descending=False))


class RandomDrop(Keep):
    """DARE: keep each entry with probability `density`, the masks drawn from `generator()`."""

    def __init__(self, density: float, generator):
        self.density, self.generator = density, generator

    def begin(self):
        self.stream = self.generator()

    def apply(self, delta):
        if self.density >= 1:
            return delta
        return delta * (torch.rand(delta.shape, generator=self.stream) < self.density).to(delta.device)


class Della(Keep):
    """DELLA's MagPrune, row by row (chunks hold whole rows of `row` entries): keep probabilities
    from density - epsilon (a row's smallest |x|) rising linearly with the magnitude rank to
    density + epsilon (its largest); `per_entry_rescale` divides each kept entry by its probability."""

    def __init__(self, density: float, epsilon: float, generator, row: int, per_entry_rescale: bool = False):
        if 0 < density < 1 and not (0 < density - epsilon and density + epsilon < 1):
            raise ValueError(f"della: epsilon={epsilon} must keep density +- epsilon inside (0, 1), density={density}")
        self.density, self.epsilon, self.generator, self.row = density, epsilon, generator, row
        self.per_entry_rescale = per_entry_rescale

    def begin(self):
        self.stream = self.generator()

    def apply(self, delta):
        if self.density >= 1:
            return delta
        if self.density <= 0:
            return torch.zeros_like(delta)
        rows = delta.reshape(-1, self.row)                                    # (rows, row)
        ranks = torch.argsort(torch.argsort(rows.abs(), dim=1, stable=True), dim=1).to(rows.dtype)
        probs = (self.density - self.epsilon) + (ranks / ((self.row - 1) or 1)) * 2 * self.epsilon
        mask = torch.rand(rows.shape, generator=self.stream, dtype=torch.float32) < probs.float().cpu()
        kept = rows * mask.to(rows.device)
        return (kept / probs if self.per_entry_rescale else kept).reshape(-1)


class Rescaled(Keep):
    """A sparsifier's kept entries rescaled: divided by the density, or (`l1`) scaled so the task
    vector keeps its L1 norm over the whole tensor."""

    def __init__(self, inner: Keep, mode: str, eps: float = 1e-7):
        self.inner, self.mode, self.eps, self.density = inner, mode, eps, inner.density

    def prepare(self, deltas, n):
        self.inner.prepare(deltas, n)
        self.factor = 1.0
        if self.mode == "l1":
            before = after = 0.0
            self.inner.begin()
            for delta in deltas():
                before += float(delta.abs().sum(dtype=torch.float64))
                after += float(self.inner.apply(delta).abs().sum(dtype=torch.float64))
            self.factor = before / after if before >= self.eps and after >= self.eps else 1.0

    def begin(self):
        self.inner.begin()

    def apply(self, delta):
        kept = self.inner.apply(delta)
        return kept / self.density if self.mode == "density" else kept * self.factor


def spans(n: int, row: int, chunk: int):
    step = max(1, chunk // row) * row
    return [(start, min(n, start + step)) for start in range(0, n, step)]


def streamed_combine(base, tensors, weights, sparsifiers, consensus: bool = False, normalize: bool = False,
                     lambda_: float = 1.0, chunk: int = CHUNK, row: int | None = None) -> torch.Tensor:
    """task_vectors.combine, chunk by chunk: base + lambda * Σ w_i s_i(t_i - base) [/ Σ w_i], with
    TIES' sign election when consensus. `row`: chunks hold whole rows of this many entries."""
    dtype, shape, n = work_dtype(base), base.shape, base.numel()
    flat_base, flats = base.reshape(-1), [t.reshape(-1) for t in tensors]
    parts = spans(n, row or max(1, n), chunk)

    def deltas(i):
        return lambda: (flats[i][s:e].to(dtype) - flat_base[s:e].to(dtype) for s, e in parts)
    for i, sparsifier in enumerate(sparsifiers):
        sparsifier.prepare(deltas(i), n)
        sparsifier.begin()
    out = torch.empty(n, dtype=dtype, device=base.device)                   # (n,), the merged tensor
    total = sum(float(w) for w in weights)
    for s, e in parts:
        b = flat_base[s:e].to(dtype)
        kept = torch.stack([sparsifier.apply(flats[i][s:e].to(dtype) - b).mul_(float(weights[i]))
                            for i, sparsifier in enumerate(sparsifiers)])  # (N, chunk)
        if consensus:
            majority = torch.where(kept.sum(dim=0) >= 0, 1.0, -1.0).to(dtype)   # (chunk,)
            mixed, divisor = torch.zeros_like(b), torch.zeros_like(b)
            for i, weight in enumerate(weights):
                agree = kept[i].sign() == majority                             # a zero delta never agrees
                mixed.add_(kept[i] * agree)
                divisor.add_(agree.to(dtype), alpha=float(weight))
            divisor[divisor == 0] = 1
        else:
            mixed, divisor = kept.sum(dim=0), (1.0 if abs(total) < 1e-8 else total)
        if normalize:
            mixed = mixed / divisor
        if lambda_ != 1:
            mixed = mixed * lambda_
        out[s:e] = b + mixed
    return out.reshape(shape)


__all__ = ["CHUNK", "Della", "Keep", "Magnitude", "Outliers", "RandomDrop", "RankWindow", "Rescaled", "select",
           "streamed_combine"]
