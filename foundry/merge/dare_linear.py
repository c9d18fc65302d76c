"""`dare_linear`: task arithmetic on task vectors randomly thinned to `density` and rescaled
(DARE, Yu et al. 2023, arXiv:2311.03099).

    dare_linear(base, [a, b], weights=[1, 1], densities=[0.3, 0.3], seed=0, name="blocks.0.attn.q_proj.weight")
Recipe: base_model; `weight` (required), `density` per model; `rescale` (default true),
`rescale_mode` (l1: mergekit's, keeps the L1 norm; density: the paper's 1/density), `normalize`
(default false), `lambda`. Masks are seeded by the recipe's `seed` and the tensor's name.
"""
from foundry.merge.method import Method
from foundry.merge.task_vectors import parameters, run_job, task_merge


def dare_linear(base, tensors, weights, densities, seed: int = 0, name: str = "", rescale: bool = True,
                rescale_mode: str = "l1", normalize: bool = False, lambda_: float = 1.0):
    return task_merge(base, tensors, weights, densities, drop="random", rescale=rescale, rescale_mode=rescale_mode,
                      normalize=normalize, lambda_=lambda_, seed=seed, name=name)


METHODS = {
    "dare_linear": Method("dare_linear", lambda job: run_job(job, "random", False),
                          "random drop and rescale, then task arithmetic (arXiv:2311.03099)",
                          **parameters(False, True), random=True),
}
