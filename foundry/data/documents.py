"""The training split's documents on their way to tokens: filters, curriculum order, per-document encoding.

    docs, spans, report = filter_and_order(train_docs, train_spans, data_cfg, reference)
    tokens = encode_documents(tokenizer, docs, spans)      # DocumentTokens(tokens, offsets, mask)

Used by dataset.load_dataset. Documents are tokenized one by one (each followed by
DOCUMENT_SEPARATOR, so the stream reads as the joined text does) when a run needs to know where
each document's tokens are: `data.packing: bin` (document offsets) or `data.loss_on: assistant`
(a mask, 1 on the tokens of assistant turns, from the chat template's spans). Otherwise the
joined text is encoded in one pass, exactly as before these options existed.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from foundry.data.curriculum import NEEDS_REFERENCE, ordered_indices
from foundry.data.filters import apply_filters
from foundry.errors import UserError


@dataclass
class DocumentTokens:
    tokens: np.ndarray               # every document's tokens (and separator), concatenated
    offsets: np.ndarray              # (n_docs + 1,) int64: document i is tokens[offsets[i]:offsets[i + 1]]
    mask: np.ndarray | None = None   # uint8, 1 where a token is a loss target (assistant turns); None = all


def train_spans(source_spans, train_docs: list[str]):
    """The assistant spans of the training documents: the split keeps whole documents in order,
    except the last one, which may be cut; its spans are clipped to what remains."""
    if source_spans is None:
        return None
    return [[(a, min(b, len(doc))) for a, b in spans if a < len(doc)]
            for doc, spans in zip(train_docs, source_spans)]


def filter_and_order(docs: list[str], spans, data_cfg, reference=None):
    """(documents, spans, filter report): text filters in order, then the curriculum's order
    (easiest first; `reference.score(documents)` supplies per-document scores where it needs them)."""
    kept, report = apply_filters(docs, data_cfg.filters)
    if not kept:
        raise UserError(f"data.filters removed every training document ({len(docs)}): loosen them")
    docs = [docs[i] for i in kept]
    spans = [spans[i] for i in kept] if spans is not None else None
    by = data_cfg.curriculum.by
    scores = None
    if by in NEEDS_REFERENCE:
        if reference is None:
            raise UserError(f"data.curriculum.by: {by} needs a reference model to score documents")
        scores = reference.score(docs)
    order = ordered_indices(by, docs, scores)
    return [docs[i] for i in order], ([spans[i] for i in order] if spans is not None else None), report


def token_filters(docs: list[str], spans, data_cfg, tokenizer):
    """The filters that count tokens, with the run's tokenizer: (documents, spans, report)."""
    kept, report = apply_filters(docs, data_cfg.filters, tokenizer, stage="tokens")
    if not kept:
        raise UserError("data.filters: the token-length filters removed every training document")
    return [docs[i] for i in kept], ([spans[i] for i in kept] if spans is not None else None), report


def _pieces(doc: str, spans, separator: str) -> list[tuple[str, bool]]:
    """(text, carries loss) runs of one document, then its separator (no loss)."""
    if spans is None:
        return [(doc + separator, True)]
    pieces, at = [], 0
    for a, b in spans:
        pieces += [(doc[at:a], False), (doc[a:b], True)]
        at = b
    return [p for p in pieces + [(doc[at:] + separator, False)] if p[0]]


def encode_documents(tokenizer, docs: list[str], spans=None, separator: str = "\n\n") -> DocumentTokens:
    """Each document (with `separator`) tokenized alone; `spans` (chat) marks the loss-carrying runs."""
    arrays, masks, lengths = [], [], []
    for i, doc in enumerate(docs):
        n = 0
        for text, loss in _pieces(doc, spans[i] if spans is not None else None, separator):
            ids = tokenizer.encode_array(text)
            arrays.append(ids)
            masks.append(np.full(len(ids), loss, np.uint8))
            n += len(ids)
        lengths.append(n)
    tokens = np.concatenate(arrays + [np.zeros(0, np.int64)])
    offsets = np.concatenate([[0], np.cumsum(lengths, dtype=np.int64)]).astype(np.int64)
    mask = np.concatenate(masks + [np.zeros(0, np.uint8)]) if spans is not None else None
    return DocumentTokens(tokens, offsets, mask)
