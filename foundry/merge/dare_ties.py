"""`dare_ties`: DARE's random drop and rescale, then TIES' sign election (arXiv:2311.03099).

    dare_ties(base, [a, b], weights=[1, 1], densities=[0.5, 0.5], seed=0, name="wte.weight")
Recipe: as dare_linear (`normalize` defaults to false, as in mergekit).
"""
from foundry.merge.method import Method
from foundry.merge.task_vectors import parameters, run_job, task_merge


def dare_ties(base, tensors, weights, densities, seed: int = 0, name: str = "", rescale: bool = True,
              rescale_mode: str = "l1", normalize: bool = False, lambda_: float = 1.0):
    return task_merge(base, tensors, weights, densities, drop="random", consensus=True, rescale=rescale,
                      rescale_mode=rescale_mode, normalize=normalize, lambda_=lambda_, seed=seed, name=name)


METHODS = {
    "dare_ties": Method("dare_ties", lambda job: run_job(job, "random", True),
                        "random drop and rescale, then sign election (arXiv:2311.03099)",
                        **parameters(False, True), random=True),
}
