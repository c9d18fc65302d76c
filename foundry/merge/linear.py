"""`linear`: the weighted average of the inputs (Wortsman et al. 2022, "model soups").

    linear([a, b, c], weights=[1, 1, 2])                  # (a + b + 2c) / 4
    linear([a, b], weights=[0.3, 0.7], normalize=False)   # 0.3 a + 0.7 b

Recipe: `weight` per model (required), `normalize` (default true: divide by the weights' sum).
A base_model, when given, is one more input with its own weight (as in mergekit).
"""
import torch

from foundry.errors import UserError
from foundry.merge.method import Method, Param, TensorJob, work_dtype


def linear(tensors, weights, normalize: bool = True, name: str = "") -> torch.Tensor:
    dtype = work_dtype(tensors[0])
    out = torch.zeros(tensors[0].shape, dtype=dtype, device=tensors[0].device)
    for tensor, weight in zip(tensors, weights):
        out.add_(tensor.to(dtype), alpha=float(weight))
    if normalize:
        total = sum(float(w) for w in weights)
        if total == 0:
            raise UserError(f"linear: the weights of {name or 'a tensor'} sum to 0; set normalize: false")
        out.div_(total)
    return out


def _run(job: TensorJob) -> torch.Tensor:
    return linear(job.tensors, [p["weight"] for p in job.per_model], job.shared["normalize"], job.name)


METHODS = {
    "linear": Method("linear", _run, "weighted average (model soups, arXiv:2203.05482)",
                     shared={"normalize": Param(bool, True)}, per_model={"weight": Param(float)}),
}
