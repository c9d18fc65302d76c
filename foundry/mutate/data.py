"""Mutations of the data pipeline: conversation format, curriculum, tokenizer, packing, filters, loss span.

Each is `name(cfg, variant) -> new Config` built through edit.with_values (input untouched,
result validated). The registry DATA at the end maps type -> (function, variants); the variant
tables below say what each variant sets.
"""
import dataclasses
import os

from foundry.config import CurriculumConfig
from foundry.mutate.edit import NotApplicable, with_values

# curriculum variant -> data.curriculum settings (the rest keep CurriculumConfig's defaults);
# `perplexity` scores documents with data.curriculum.reference, else with the model fine-tuned from
CURRICULUM_VARIANTS = {
    "none": {},
    "length": {"by": "length", "schedule": "sqrt"},
    "length_linear": {"by": "length", "schedule": "linear"},
    "length_step": {"by": "length", "schedule": "step", "start": 0.3},
    "perplexity": {"by": "perplexity", "schedule": "sqrt"},
}

# filters variant -> data.filters
DEDUPE = [{"name": "exact_dup"}, {"name": "near_dup", "threshold": 0.8}]
GOPHER = [{"name": "gopher_repetition"}, {"name": "gopher_quality"}]
FILTER_VARIANTS = {
    "none": [],
    "dedupe": DEDUPE,
    "min_length": [{"name": "length", "min_chars": 64}],
    "gopher": GOPHER,
    "dedupe_gopher": DEDUPE + GOPHER,
}


def _one_document(source: str) -> bool:
    return os.path.splitext(source)[1] not in ("", ".jsonl") and not any(c in source for c in "*?[")


def chat_format(cfg, variant):
    """Template that renders JSONL conversations into training text."""
    if not cfg.data.source.endswith(".jsonl"):
        raise NotApplicable(f"data.format applies to JSONL conversations; data.source is {cfg.data.source!r}")
    return with_values(cfg, {"data.format": variant})


def curriculum(cfg, variant):
    """Easy documents first: early batches from the shortest (or least perplexing) documents, widening on a schedule."""
    if _one_document(cfg.data.source):
        raise NotApplicable(f"data.source {cfg.data.source!r} is one document; a curriculum leaves it unchanged")
    settings = dataclasses.asdict(CurriculumConfig(**CURRICULUM_VARIANTS[variant]))
    if settings["by"] == "perplexity":
        settings["reference"] = cfg.data.curriculum.reference or cfg.train.init_from
        if not settings["reference"]:
            raise NotApplicable("a perplexity curriculum needs a reference model (data.curriculum.reference "
                                "or train.init_from)")
    return with_values(cfg, {"data.curriculum": settings})


def tokenizer(cfg, variant):
    """Tokenizer (val_bpb compares across tokenizers); vocab_size follows the tokenizer."""
    return with_values(cfg, {"data.tokenizer": variant, "model.vocab_size": 0})


def packing(cfg, variant):
    """Random windows over the stream, or whole documents bin-packed into rows that attend within a document."""
    return with_values(cfg, {"data.packing": variant})


def filters(cfg, variant):
    """Training-split filters: exact + near-duplicate removal, a minimum length, the Gopher quality rules."""
    if _one_document(cfg.data.source):
        raise NotApplicable(f"data.source {cfg.data.source!r} is one document; document filters do not apply")
    if cfg.data.source == "builtin" and "gopher" in variant:
        raise NotApplicable("the Gopher rules are for prose; the builtin corpus is Python source")
    return with_values(cfg, {"data.filters": FILTER_VARIANTS[variant]})


def loss_on(cfg, variant):
    """Chat SFT: loss on every token, or on the assistant turns only."""
    if cfg.data.format == "none":
        raise NotApplicable("data.loss_on needs a chat format (data.format)")
    return with_values(cfg, {"data.loss_on": variant})


DATA = {
    "format": (chat_format, ("none", "chatml", "llama3", "alpaca")),
    "curriculum": (curriculum, tuple(CURRICULUM_VARIANTS)),
    "tokenizer": (tokenizer, ("byte", "char", "bpe")),
    "packing": (packing, ("random", "bin")),
    "filters": (filters, tuple(FILTER_VARIANTS)),
    "loss_on": (loss_on, ("all", "assistant")),
}
