"""Curricula: the order in which training documents are laid out in the token stream.

    order_documents("short_first", train_docs) -> train_docs sorted shortest first

get_batch samples random offsets, so an ordering only matters to code that reads the training split
front to back (a sequential sampler, or an analysis of the stream); with `short_first` the first
tokens of the split come from the shortest documents. Only the training split is reordered; the
validation split keeps source order so val metrics compare across curricula. A single-text source
is one document, so every curriculum leaves it unchanged. To add one, add a function
(list[str]) -> list[str] to CURRICULA at the end of this file.
"""
from __future__ import annotations

from foundry.errors import UserError


def keep_order(documents: list[str]) -> list[str]:
    """`none`: the source order (files sorted by name, JSONL records in file order)."""
    return list(documents)


def short_first(documents: list[str]) -> list[str]:
    """`short_first`: by length in characters, shortest first; ties keep source order (stable sort)."""
    return sorted(documents, key=len)


def order_documents(name: str, documents: list[str]) -> list[str]:
    if name not in CURRICULA:
        raise UserError(f"data.curriculum: unknown {name!r} (valid: {', '.join(sorted(CURRICULA))})")
    return CURRICULA[name](documents)


CURRICULA = {
    "none": keep_order,
    "short_first": short_first,
}
