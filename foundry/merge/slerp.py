"""`slerp`: spherical interpolation between the base and one other model, tensor by tensor.

    slerp(a, b, t=0.3)        # a at t=0, b at t=1; the arc between their directions in between

Each tensor is flattened; the angle comes from the normalized vectors, the result combines the
unnormalized ones: sin((1-t)θ)/sin θ · a + sin(tθ)/sin θ · b, in float32. When the directions are
nearly parallel (|cos θ| > 0.9995) the formula is ill-conditioned and the linear (1-t) a + t b is
used instead (as mergekit does). Recipe: base_model plus one other model; `t` (required) as a
scalar, a gradient list across layers, or filtered values (e.g. `filter: attn`).
"""
import math

import torch

from foundry.merge.method import Method, Param, TensorJob, work_dtype

DOT_THRESHOLD = 0.9995
EPS = 1e-8


def slerp(a: torch.Tensor, b: torch.Tensor, t: float, dot_threshold: float = DOT_THRESHOLD) -> torch.Tensor:
    dtype = work_dtype(a)
    x, y = a.to(dtype).reshape(-1), b.to(dtype).reshape(-1)
    t = float(t)
    norm_x, norm_y = torch.linalg.vector_norm(x).item(), torch.linalg.vector_norm(y).item()
    dot = 0.0
    if x.numel():
        dot = torch.dot(x / (norm_x if norm_x > EPS else 1.0), y / (norm_y if norm_y > EPS else 1.0)).item()
    dot = min(1.0, max(-1.0, dot))
    if abs(dot) > dot_threshold:
        coef_a, coef_b = 1 - t, t
    else:
        theta = math.acos(dot)
        coef_a, coef_b = math.sin((1 - t) * theta) / math.sin(theta), math.sin(t * theta) / math.sin(theta)
    return (coef_a * x + coef_b * y).reshape(a.shape)


def _run(job: TensorJob) -> torch.Tensor:
    return slerp(job.base, job.tensors[0], job.shared["t"])


METHODS = {
    "slerp": Method("slerp", _run, "spherical interpolation of two models (Shoemake 1985)",
                    shared={"t": Param(float)}, base=True, min_models=2, max_models=2),
}
