"""`ties`: trim each task vector to its largest `density` fraction, elect each entry's sign by
mass, average the entries that agree (Yadav et al. 2023, arXiv:2306.01708).

    ties(base, [a, b, c], weights=[1, 1, 1], densities=[0.5, 0.5, 0.5])
Recipe: base_model; `weight` (required) and `density` (default 1) per model; `normalize` (default
true: divide by the agreeing weights, the "disjoint mean"), `lambda`, `rescale` (default false).
"""
from foundry.merge.method import Method
from foundry.merge.task_vectors import parameters, run_job, task_merge


def ties(base, tensors, weights, densities, normalize: bool = True, lambda_: float = 1.0):
    return task_merge(base, tensors, weights, densities, drop="magnitude", consensus=True,
                      normalize=normalize, lambda_=lambda_)


METHODS = {
    "ties": Method("ties", lambda job: run_job(job, "magnitude", True),
                   "trim, elect sign, disjoint mean (arXiv:2306.01708)", **parameters(True, False)),
}
