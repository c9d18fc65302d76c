"""`breadcrumbs`: drop the largest `gamma` fraction of each task vector (outliers) and the
smallest beyond `density`, then task arithmetic (Davari & Belilovsky 2023, arXiv:2312.06795).

    breadcrumbs(base, [a, b], weights=[1, 1], densities=[0.9, 0.9], gammas=[0.01, 0.01])
Recipe: base_model; `weight` (required), `density` (default 1: nothing dropped), `gamma`
(default 0.01) per model; `normalize`, `rescale` (default false), `lambda`.
"""
from foundry.merge.method import Method, Param
from foundry.merge.task_vectors import parameters, run_job, task_merge


def breadcrumbs(base, tensors, weights, densities, gammas, normalize: bool = False, lambda_: float = 1.0):
    return task_merge(base, tensors, weights, densities, drop="outliers", gammas=gammas,
                      normalize=normalize, lambda_=lambda_)


METHODS = {
    "breadcrumbs": Method("breadcrumbs", lambda job: run_job(job, "outliers", False),
                          "drop the largest and the smallest entries of each task vector (arXiv:2312.06795)",
                          **parameters(False, False, {"gamma": Param(float, 0.01)})),
}
