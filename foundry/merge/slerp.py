"""`slerp`: spherical interpolation between the base and one other model, tensor by tensor.

    slerp(a, b, t=0.3)        # a at t=0, b at t=1; the arc between their directions in between

Each tensor is flattened; the angle comes from the normalized vectors, the result combines the
unnormalized ones: sin((1-t)θ)/sin θ · a + sin(tθ)/sin θ · b, in float32. When the directions are
nearly parallel (|cos θ| > 0.9995) the formula is ill-conditioned and the linear (1-t) a + t b is
used instead (as mergekit does). Recipe: base_model plus one other model; `t` (required) as a
scalar, a gradient list across layers, or filtered values (e.g. `filter: attn`).
"""
import torch

from foundry.merge.method import Method, Param, TensorJob, work_dtype

DOT_THRESHOLD = 0.9995
EPS = 1e-8
CHUNK = 1 << 20


def slerp(a: torch.Tensor, b: torch.Tensor, t: float, dot_threshold: float = DOT_THRESHOLD) -> torch.Tensor:
    dtype = work_dtype(a)
    x, y = a.to(dtype).reshape(-1), b.to(dtype).reshape(-1)
    if not x.numel():
        return x.reshape(a.shape)
    # norms and cos θ summed over chunks of CHUNK entries, in the working dtype: the same order of
    # float additions as mergekit's, so large tensors agree bitwise too
    chunks = lambda v: v.split(CHUNK)  # noqa: E731
    norm_x = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(c) for c in chunks(x)]))
    norm_y = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(c) for c in chunks(y)]))
    norm_x, norm_y = torch.where(norm_x > EPS, norm_x, 1.0), torch.where(norm_y > EPS, norm_y, 1.0)
    dot = torch.stack([((cx / norm_x) * (cy / norm_y)).sum() for cx, cy in zip(chunks(x), chunks(y))]).sum().clamp(-1, 1)
    t = torch.tensor(float(t), dtype=dtype)
    if dot.abs() > dot_threshold:
        coef_a, coef_b = 1 - t, t
    else:
        theta = torch.acos(dot)
        coef_a, coef_b = torch.sin((1 - t) * theta) / torch.sin(theta), torch.sin(t * theta) / torch.sin(theta)
    return (coef_a * x + coef_b * y).reshape(a.shape)


def _run(job: TensorJob) -> torch.Tensor:
    return slerp(job.base, job.tensors[0], job.shared["t"])


METHODS = {
    "slerp": Method("slerp", _run, "spherical interpolation of two models (Shoemake 1985)",
                    shared={"t": Param(float)}, base=True, min_models=2, max_models=2),
}
