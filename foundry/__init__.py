"""Foundry, as a Python library. These names are the stable public API:

    import foundry
    model, tokenizer, cfg = foundry.load("runs/tiny")        # a run folder or its checkpoint/
    logits = model(torch.tensor([tokenizer.encode("def ")]))  # (B, T) -> (B, T, vocab)
    cfg = foundry.load_config("baselines/tiny.yaml", ["model.n_layer=6"])
    summary = foundry.train(cfg, "runs/tiny6")               # the run's summary.json as a dict
    model = foundry.GPT(cfg.model)                           # cfg.model.vocab_size set
    from foundry.zoo import import_folder, export_run        # Hugging Face in and out (foundry/zoo)

Everything is imported on first use, so `import foundry` stays cheap for the CLI.
"""

__version__ = "0.1.0"
__all__ = ["GPT", "load", "load_config", "train"]


def load(path, device="cpu"):
    """(model in eval mode, tokenizer, cfg) from a Foundry run folder or checkpoint folder."""
    from foundry.weights.checkpoint import load_model
    return load_model(path, device)


def load_config(path, overrides=()):
    """A checked Config from a YAML file and dotted overrides (`model.n_layer=6`)."""
    from foundry.catalog import load as load_checked
    return load_checked(path, overrides)


def train(cfg, out_dir, resume: bool = False):
    """Train `cfg` into the run folder `out_dir`; returns the summary."""
    from foundry.training.loop import train as run
    return run(cfg, out_dir, resume=resume)


def __getattr__(name):
    if name == "GPT":
        from foundry.model.gpt import GPT
        return GPT
    raise AttributeError(f"module 'foundry' has no attribute {name!r}")
