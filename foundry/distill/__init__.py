"""Knowledge distillation: a student trained on a frozen teacher's soft targets (train.distill),
live on its own device or from offline top-k teacher logits.

    cfg = foundry.load_config("student.yaml", ["train.distill.teacher=runs/teacher"])
    foundry.train(cfg, "runs/student")                        # the `distill` training objective
    import foundry.distill
    foundry.distill.write_cache("runs/teacher", cfg, "caches/t", top_k=16)   # = foundry distill cache
    foundry.train(load_config(..., ["train.distill.cache=caches/t"]), "runs/student2")

Files: losses.py (DISTILL_LOSSES: kl, jsd, tvd; soft targets with the missing mass as a bucket),
teacher.py (the frozen teacher on its device and dtype), cache.py (offline teacher logits:
write, read, manifest), distiller.py (hard + soft + feature loss of one micro-batch),
cli.py (`foundry distill cache`). This file imports nothing at import time: the catalog reads
losses.DISTILL_LOSSES without pulling in the rest.
"""


def write_cache(teacher, cfg, out, top_k: int = 16, **options) -> dict:
    """Write the teacher's top-k log-probabilities for cfg's training stream into `out` (cache.py)."""
    from foundry.distill import cache
    return cache.write_cache(teacher, cfg, out, top_k=top_k, **options)
