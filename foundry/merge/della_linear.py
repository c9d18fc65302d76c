"""`della_linear`: DELLA's MagPrune random drop (see della.py), then plain task arithmetic.

    della(base, tensors, weights, densities, epsilons, consensus=False, normalize=False)
Recipe: as della, `normalize` defaulting to false.
"""
from foundry.merge.della import EPSILON
from foundry.merge.method import Method
from foundry.merge.task_vectors import parameters, run_job

METHODS = {
    "della_linear": Method("della_linear", lambda job: run_job(job, "della", False),
                           "MagPrune random drop, then task arithmetic (arXiv:2406.11617)",
                           **parameters(False, True, EPSILON), random=True),
}
