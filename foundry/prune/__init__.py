"""Pruning: unstructured (magnitude, saliency, Wanda), N:M patterns and structured (heads, neurons,
layers) pruning of trained Foundry runs, with masks kept as buffers in the checkpoint.

    import foundry.prune
    report = foundry.prune.prune("runs/base", "runs/base-wanda", method="wanda", sparsity=0.5)
    report = foundry.prune.prune("runs/base", "runs/base-heads", structured="heads", sparsity=0.25)

Files: scores.py (PRUNE_METHODS, PRUNE_SCOPES, N:M patterns), select.py (exact masks from scores,
N:M validator), unstructured.py (calibration statistics, masking in place), structured.py and
structured_layouts.py (a smaller config and GPT), run.py (a run folder in, a run folder out; and
train.prune for the trainer), cli.py (`foundry prune`). The mask buffers themselves live in
foundry/weights/masks.py. This file imports nothing at import time: the catalog reads
scores.PRUNE_METHODS without pulling in the rest.
"""


def prune(run, out, **options) -> dict:
    """Prune the run folder `run` into the new run folder `out` (options: see run.prune_run)."""
    from foundry.prune.run import prune_run
    return prune_run(run, out, **options)
