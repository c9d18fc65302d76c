"""Mutations of the data pipeline: conversation format, curriculum, tokenizer.

Each is `name(cfg, variant) -> new Config` built through edit.with_values (input untouched,
result validated). The registry DATA at the end maps type -> (function, variants).
"""
import dataclasses
import os

from foundry.config import CurriculumConfig
from foundry.mutate.edit import NotApplicable, with_values

# curriculum variant -> data.curriculum settings (the rest keep CurriculumConfig's defaults)
CURRICULUM_VARIANTS = {
    "none": {},
    "length": {"by": "length", "schedule": "sqrt"},
    "length_linear": {"by": "length", "schedule": "linear"},
    "length_step": {"by": "length", "schedule": "step", "start": 0.3},
}


def chat_format(cfg, variant):
    """Template that renders JSONL conversations into training text."""
    if not cfg.data.source.endswith(".jsonl"):
        raise NotApplicable(f"data.format applies to JSONL conversations; data.source is {cfg.data.source!r}")
    return with_values(cfg, {"data.format": variant})


def curriculum(cfg, variant):
    """Easy documents first: early batches drawn from the shortest documents, widening on a schedule."""
    source = cfg.data.source
    single_text = os.path.splitext(source)[1] not in ("", ".jsonl") and not any(c in source for c in "*?[")
    if single_text:
        raise NotApplicable(f"data.source {source!r} is one document; a curriculum leaves it unchanged")
    settings = dataclasses.asdict(CurriculumConfig(**CURRICULUM_VARIANTS[variant]))
    return with_values(cfg, {"data.curriculum": settings})


def tokenizer(cfg, variant):
    """Tokenizer (val_bpb compares across tokenizers); vocab_size follows the tokenizer."""
    return with_values(cfg, {"data.tokenizer": variant, "model.vocab_size": 0})


DATA = {
    "format": (chat_format, ("none", "chatml", "llama3", "alpaca")),
    "curriculum": (curriculum, tuple(CURRICULUM_VARIANTS)),
    "tokenizer": (tokenizer, ("byte", "char", "bpe")),
}
