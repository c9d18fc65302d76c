"""Model merging: mergekit's methods and recipes, streamed tensor by tensor, deterministic.

    from foundry.merge import METHODS, ties, slerp
    METHODS["ties"].run(job)                      # the registry (foundry/merge/method.py)
    ties(base, [a, b], weights=[1, 1], densities=[0.5, 0.5])   # per-tensor functions, no files
"""
from foundry.merge.breadcrumbs import METHODS as _BREADCRUMBS, breadcrumbs
from foundry.merge.breadcrumbs_ties import METHODS as _BREADCRUMBS_TIES, breadcrumbs_ties
from foundry.merge.dare_linear import METHODS as _DARE_LINEAR, dare_linear
from foundry.merge.dare_ties import METHODS as _DARE_TIES, dare_ties
from foundry.merge.della import METHODS as _DELLA, della
from foundry.merge.della_linear import METHODS as _DELLA_LINEAR
from foundry.merge.linear import METHODS as _LINEAR, linear
from foundry.merge.method import Method, Param, TensorJob
from foundry.merge.model_stock import METHODS as _MODEL_STOCK, model_stock
from foundry.merge.passthrough import METHODS as _PASSTHROUGH, passthrough
from foundry.merge.slerp import METHODS as _SLERP, slerp
from foundry.merge.task_arithmetic import METHODS as _TASK_ARITHMETIC, task_arithmetic
from foundry.merge.task_vectors import task_merge
from foundry.merge.ties import METHODS as _TIES, ties

METHODS: dict[str, Method] = {**_LINEAR, **_SLERP, **_TASK_ARITHMETIC, **_TIES, **_DARE_LINEAR, **_DARE_TIES,
                              **_BREADCRUMBS, **_BREADCRUMBS_TIES, **_DELLA, **_DELLA_LINEAR, **_MODEL_STOCK,
                              **_PASSTHROUGH}

__all__ = ["METHODS", "Method", "Param", "TensorJob", "breadcrumbs", "breadcrumbs_ties", "dare_linear", "dare_ties",
           "della", "linear", "model_stock", "passthrough", "slerp", "task_arithmetic", "task_merge", "ties"]
