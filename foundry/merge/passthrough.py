"""`passthrough`: copy tensors unchanged, optionally scaled; with `slices` it stacks layers
(a deeper model from layer ranges of several models, the new depth written into the config).

    passthrough(tensor, scale=None)
Recipe: `slices: [{sources: [{model, layer_range: [start, end]}]}, ...]`, one source per slice
(or `models` with one model); `scale` per model (default none: copy the bits).
"""
import torch

from foundry.merge.method import Method, Param, TensorJob


def passthrough(tensor: torch.Tensor, scale: float | None = None) -> torch.Tensor:
    return tensor if scale is None else tensor * scale


def _run(job: TensorJob) -> torch.Tensor:
    return passthrough(job.tensors[0], job.per_model[0].get("scale"))


METHODS = {
    "passthrough": Method("passthrough", _run, "copy (and scale) tensors; stack layer slices",
                          per_model={"scale": Param(float, None)}, max_models=1, stacks_layers=True),
}
