"""Layer fusion (MoL): transformer blocks of several models, of any family and width, kept frozen as
experts and combined by small trained adapters and routers.

    foundry fuse RECIPE.yaml --out runs/fused        # build from the experts' checkpoints and train
    foundry fuse report runs/fused                   # usage heatmap per layer and data source

    from foundry.fusion import load_recipe, fuse, report
    cfg = load_recipe("fuse.yaml", ["budget.tokens=100000"])   # a Config with a `fusion` section
    summary = fuse(cfg, "runs/fused")                # Foundry's trainer: run folder, checkpoint, resume
    model, tokenizer, cfg = foundry.load("runs/fused")          # a FusedModel, as a GPT is used
    usage = report("runs/fused")                     # writes runs/fused/fusion_usage.png (+ .json)

Files, bottom up: adapters.py (ADAPTERS: linear, bottleneck), routers.py (ROUTERS: pooled, token;
losses and stats), layer.py (ExpertPath, MoLLayer), model.py (FusedModel), spec.py (the `fusion:`
section), build.py (placement, lazy tensor loading, load_fused for foundry.load), experts.py
(reading experts' checkpoints), objective.py (the `fusion` training objective: a mixture of
sources, scored per source), recipe.py (recipe files), train.py (fuse), report.py, cli.py.
The files up to build.py import only the model and config layers, so foundry.weights.checkpoint
can load a fused checkpoint.
"""


def load_recipe(path, overrides=()):
    """A resolved fused Config from a recipe YAML and dotted overrides (foundry/fusion/recipe.py)."""
    from foundry.fusion.recipe import load_recipe as load
    return load(path, overrides)


def fuse(cfg, out_dir, resume: bool = False) -> dict:
    """Train a fused config into out_dir with Foundry's trainer; returns the summary."""
    from foundry.fusion.train import fuse as run
    return run(cfg, out_dir, resume)


def report(run, png=None, device="auto") -> dict:
    """Usage per layer and data source of a fused run; writes the heatmap PNG (default RUN/fusion_usage.png)."""
    import os

    from foundry.fusion.report import usage_report, write_report
    result = usage_report(run, device=device)
    write_report(result, png or os.path.join(run, "fusion_usage.png"))
    return result
