"""`breadcrumbs_ties`: breadcrumbs' outlier and small-entry drop, then TIES' sign election.

    breadcrumbs(base, tensors, weights, densities, gammas) with consensus (see breadcrumbs.py)
Recipe: as breadcrumbs.
"""
from foundry.merge.method import Method, Param
from foundry.merge.task_vectors import parameters, run_job, task_merge


def breadcrumbs_ties(base, tensors, weights, densities, gammas, normalize: bool = False, lambda_: float = 1.0):
    return task_merge(base, tensors, weights, densities, drop="outliers", gammas=gammas, consensus=True,
                      normalize=normalize, lambda_=lambda_)


METHODS = {
    "breadcrumbs_ties": Method("breadcrumbs_ties", lambda job: run_job(job, "outliers", True),
                               "breadcrumbs with sign election (arXiv:2312.06795)",
                               **parameters(False, False, {"gamma": Param(float, 0.01)})),
}
