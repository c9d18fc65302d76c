"""`della`: magnitude-ranked random drop (MagPrune: keep probability from
density - epsilon for the smallest entries of a row to density + epsilon for the largest), then
sign election (Deep et al. 2024, arXiv:2406.11617); della_linear.py is the same without it.

    della(base, tensors, weights, densities, epsilons, seed=0, name="blocks.0.attn.q_proj.weight")
Recipe: base_model; `weight`, `density`, `epsilon` (default 0.15) per model; `rescale` (default
true; rescale_mode density divides each kept entry by its own probability, as the paper does),
`normalize` (default true), `lambda`.
"""
from foundry.merge.method import Method, Param
from foundry.merge.task_vectors import parameters, run_job, task_merge


def della(base, tensors, weights, densities, epsilons, seed: int = 0, name: str = "", consensus: bool = True,
          normalize: bool = True, rescale: bool = True, rescale_mode: str = "l1", lambda_: float = 1.0):
    return task_merge(base, tensors, weights, densities, drop="della", epsilons=epsilons, consensus=consensus,
                      normalize=normalize, rescale=rescale, rescale_mode=rescale_mode, lambda_=lambda_,
                      seed=seed, name=name)


EPSILON = {"epsilon": Param(float, 0.15)}
METHODS = {
    "della": Method("della", lambda job: run_job(job, "della", True),
                    "MagPrune random drop, sign election (arXiv:2406.11617)",
                    **parameters(True, True, EPSILON), random=True),
}
