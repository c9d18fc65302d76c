"""Mutations of the data pipeline: conversation format, curriculum, tokenizer.

Each is `name(cfg, variant) -> new Config` built through edit.with_values (input untouched,
result validated). The registry DATA at the end maps type -> (function, variants).
"""
import os

from foundry.mutate.edit import NotApplicable, with_values


def chat_format(cfg, variant):
    """Template that renders JSONL conversations into training text."""
    if not cfg.data.source.endswith(".jsonl"):
        raise NotApplicable(f"data.format applies to JSONL conversations; data.source is {cfg.data.source!r}")
    return with_values(cfg, {"data.format": variant})


def curriculum(cfg, variant):
    """Order of training documents: as they come, or short documents first."""
    source = cfg.data.source
    single_text = os.path.splitext(source)[1] not in ("", ".jsonl") and not any(c in source for c in "*?[")
    if single_text:
        raise NotApplicable(f"data.source {source!r} is one document; a curriculum leaves it unchanged")
    return with_values(cfg, {"data.curriculum": variant})


def tokenizer(cfg, variant):
    """Tokenizer (val_bpb compares across tokenizers); vocab_size follows the tokenizer."""
    return with_values(cfg, {"data.tokenizer": variant, "model.vocab_size": 0})


DATA = {
    "format": (chat_format, ("none", "chatml", "llama3", "alpaca")),
    "curriculum": (curriculum, ("none", "short_first")),
    "tokenizer": (tokenizer, ("byte", "char", "bpe")),
}
