"""`task_arithmetic`: base + λ Σ w_i (model_i - base) (Ilharco et al. 2022, arXiv:2212.04089).

    task_arithmetic(base, [a, b], weights=[1.0, 0.5])
Recipe: base_model; `weight` per model (required); `normalize` (default false), `lambda` (1).
"""
from foundry.merge.method import Method
from foundry.merge.task_vectors import parameters, run_job, task_merge


def task_arithmetic(base, tensors, weights, normalize: bool = False, lambda_: float = 1.0):
    return task_merge(base, tensors, weights, normalize=normalize, lambda_=lambda_)


METHODS = {
    "task_arithmetic": Method("task_arithmetic", lambda job: run_job(job, None, False),
                              "base + λ Σ w_i (model_i - base) (arXiv:2212.04089)", **parameters(False, False)),
}
