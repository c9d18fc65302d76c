"""`model_stock`: move from the base toward the average of N fine-tunes by t = N cos θ / (1 + (N-1) cos θ),
θ the mean pairwise angle between their task vectors (Jang et al. 2024, arXiv:2403.19522).

    model_stock(base, [a, b, c])                      # one angle per tensor
    model_stock(base, [a, b], filter_wise=True)       # one angle per row (per output filter)

cos θ averages cos(model_i - base, model_j - base) over the pairs i < j; where 1 + (N-1) cos θ
vanishes (opposed updates) the base is kept. Recipe: base_model plus at least two models;
`filter_wise` (default false). No weights.
"""
import itertools

import torch

from foundry.merge.method import Method, Param, TensorJob, work_dtype


def model_stock(base, tensors, filter_wise: bool = False) -> torch.Tensor:
    dtype = work_dtype(base)
    w0 = base.to(dtype)
    rows = (lambda x: x.reshape(1, -1) if x.dim() < 2 else x) if filter_wise else (lambda x: x.reshape(1, -1))
    offsets = [rows(t.to(dtype) - w0) for t in tensors]                # each (rows, n)
    cosines = [((a * b).sum(-1) / (a.norm(dim=-1) * b.norm(dim=-1)).clamp(min=1e-6)).clamp(-1, 1)
               for a, b in itertools.combinations(offsets, 2)]
    cos = torch.stack(cosines).mean(dim=0).unsqueeze(-1)              # (rows, 1)
    n = len(tensors)
    denominator = 1 + (n - 1) * cos
    singular = denominator.abs() < 1e-6
    t = torch.where(singular, torch.zeros_like(cos), n * cos / torch.where(singular, torch.ones_like(cos), denominator))
    average = rows(sum(x.to(dtype) for x in tensors) / n)
    return (t * average + (1 - t) * rows(w0)).reshape(base.shape)


def _run(job: TensorJob) -> torch.Tensor:
    return model_stock(job.base, job.tensors, job.shared["filter_wise"])


METHODS = {
    "model_stock": Method("model_stock", _run, "toward the fine-tunes' average by their angle (arXiv:2403.19522)",
                          shared={"filter_wise": Param(bool, False)}, base=True, min_models=3),
}
