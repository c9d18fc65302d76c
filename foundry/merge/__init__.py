"""Model merging: mergekit's methods and recipes, streamed tensor by tensor, deterministic.

    foundry merge RECIPE.yaml --out DIR [--dry-run] [--json]        # the command (cli.py)
    from foundry.merge import merge, METHODS, ties, slerp
    summary = merge("recipe.yaml", "runs/merged")                   # or a dict in the same format
    METHODS["ties"].run(job)                      # the registry (method.py: Method, TensorJob)
    ties(base, [a, b], weights=[1, 1], densities=[0.5, 0.5])        # per-tensor functions, no files

Files: method.py (what a method is), one file per method ending with its registry dict
(task_vectors.py is the engine of the task-vector family), recipe.py (mergekit's YAML format,
parameter resolution), sources.py (Foundry and Hugging Face models, read lazily), plan.py (the
output tensors and their inputs), vocab.py (tokenizer_source), executor.py (streaming, lineage),
output.py (the output folder), cli.py.
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
from foundry.merge.executor import merge, merge_tensor, prepare  # noqa: E402 (needs METHODS' modules first)

METHODS: dict[str, Method] = {**_LINEAR, **_SLERP, **_TASK_ARITHMETIC, **_TIES, **_DARE_LINEAR, **_DARE_TIES,
                              **_BREADCRUMBS, **_BREADCRUMBS_TIES, **_DELLA, **_DELLA_LINEAR, **_MODEL_STOCK,
                              **_PASSTHROUGH}

__all__ = ["METHODS", "Method", "Param", "TensorJob", "merge", "merge_tensor", "prepare", "breadcrumbs", "breadcrumbs_ties", "dare_linear", "dare_ties",
           "della", "linear", "model_stock", "passthrough", "slerp", "task_arithmetic", "task_merge", "ties"]
