"""Packing: how training tokens become rows of block_size tokens (`data.packing`, registry PACKINGS).

    sampler = PACKINGS[cfg.data.packing](dataset, cfg.model.block_size, cfg.data.curriculum.by != "none")
    x, y, doc_ids = sampler.batch(batch_size, rng, share=1.0)   # (B, T) each; doc_ids None for random
    logits = model(x, doc_ids=doc_ids)                           # targets of -1 carry no loss

`random` (the default, nanoGPT's way): windows at random offsets over the joined training stream;
a window spans documents and attends across them. `bin`: each training document, with its
DOCUMENT_SEPARATOR, is tokenized alone (dataset.py keeps the offsets); documents longer than
block_size + 1 tokens are split into pieces; the pieces are packed into rows of block_size + 1 tokens
by first-fit decreasing, and the rest of a row is padding. Rows carry one id per piece, so attention
never crosses a document and positions restart (GPT.forward doc_ids). A target whose token starts
another piece, and padding, is -1. `stats` is the waste the run summary reports: the padding share of
the row slots and the share of tokens that are no target because they start a piece. With a
curriculum, rows are ordered by the mean curriculum rank of their documents (easiest first).
A loss mask (data.loss_on: assistant) sets targets outside assistant turns to -1 in both packings.
"""
from __future__ import annotations

import numpy as np
import torch

from foundry.data.dataset import get_batch


def first_fit_decreasing(lengths, capacity: int) -> tuple[np.ndarray, np.ndarray]:
    """(row, column) of each item: items by decreasing length, each into the first row it fits.

    A max-tree over the rows' free space finds that row in O(log n) per item."""
    lengths = np.asarray(lengths, dtype=np.int64)
    if len(lengths) and (lengths.max() > capacity or lengths.min() <= 0):
        raise ValueError(f"items must have 1..{capacity} tokens")
    size = 1 << max(0, int(len(lengths) - 1).bit_length())
    free = np.full(2 * size, capacity, dtype=np.int64)  # free[1] is the root; leaves at size..2 size - 1
    row, column = np.zeros(len(lengths), np.int64), np.zeros(len(lengths), np.int64)
    for item in np.argsort(-lengths, kind="stable"):
        need, node = int(lengths[item]), 1
        while node < size:                      # descend towards the leftmost row with room
            node = 2 * node if free[2 * node] >= need else 2 * node + 1
        row[item], column[item] = node - size, capacity - free[node]
        free[node] -= need
        while node > 1:
            node //= 2
            free[node] = max(free[2 * node], free[2 * node + 1])
    return row, column


def split_pieces(offsets: np.ndarray, piece: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(start, length, document) of each piece: every document cut into runs of at most `piece` tokens."""
    lengths = np.diff(offsets)
    counts = np.maximum(1, -(-lengths // piece))
    document = np.repeat(np.arange(len(lengths)), counts)
    within = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    start = offsets[:-1][document] + within * piece
    length = np.minimum(piece, offsets[1:][document] - start)
    keep = length > 0
    return start[keep], length[keep], document[keep]


class RandomWindows:
    """`random`: today's windows at uniform offsets of the stream (of its first `share`)."""

    def __init__(self, dataset, block_size: int, by_curriculum: bool = False):
        self.tokens, self.mask, self.block_size = dataset.train, dataset.train_mask, block_size
        self.stats = {"packing": "random"}

    def batch(self, batch_size: int, rng, share: float = 1.0):
        x, y = get_batch(self.tokens, batch_size, self.block_size, rng, share, self.mask)
        return x, y, None


class PackedRows:
    """`bin`: first-fit-decreasing rows of whole documents (pieces of long ones), kept apart."""

    def __init__(self, dataset, block_size: int, by_curriculum: bool = False):
        if dataset.train_offsets is None:
            raise ValueError("data.packing: bin needs a dataset loaded with packing='bin' (document offsets)")
        width = block_size + 1  # inputs are a row's first block_size tokens, targets its last
        start, length, document = split_pieces(np.asarray(dataset.train_offsets), width)
        row, column = first_fit_decreasing(length, width)
        n_rows = int(row.max()) + 1
        if by_curriculum:  # documents are stored easiest first: order rows by their documents' mean rank
            rank = np.bincount(row, weights=document * length, minlength=n_rows) / np.bincount(row, length, n_rows)
            new_index = np.empty(n_rows, np.int64)
            new_index[np.argsort(rank, kind="stable")] = np.arange(n_rows)
            row = new_index[row]
        within = np.arange(length.sum()) - np.repeat(np.cumsum(length) - length, length)  # offset in its piece
        source = np.repeat(start, length) + within                                   # token index per slot
        slot = np.repeat(row * width + column, length) + within                      # flat row slot
        tokens = np.asarray(dataset.train)
        self.rows = np.zeros(n_rows * width, tokens.dtype)
        self.rows[slot] = tokens[source]
        self.pieces = np.full(n_rows * width, -1, np.int32)  # piece id per slot; -1 = padding
        self.pieces[slot] = np.repeat(np.arange(len(length), dtype=np.int32), length)
        self.targets_ok = None
        if dataset.train_mask is not None:
            self.targets_ok = np.zeros(n_rows * width, bool)
            self.targets_ok[slot] = np.asarray(dataset.train_mask)[source].astype(bool)
        self.rows, self.pieces = self.rows.reshape(n_rows, width), self.pieces.reshape(n_rows, width)
        if self.targets_ok is not None:
            self.targets_ok = self.targets_ok.reshape(n_rows, width)
        real, slots = int(length.sum()), n_rows * width
        self.stats = {"packing": "bin", "rows": n_rows, "documents": int(len(dataset.train_offsets) - 1),
                      "pieces": int(len(length)), "split_documents": int((np.bincount(document) > 1).sum()),
                      "tokens": real, "padding_tokens": slots - real, "padding_share": round(1 - real / slots, 4),
                      "boundary_share": round(len(length) / max(1, real), 4)}

    def batch(self, batch_size: int, rng, share: float = 1.0):
        n = len(self.rows)
        picked = rng.integers(0, max(1, min(n, int(np.ceil(share * n)))), size=batch_size)  # (B,)
        rows, pieces = self.rows[picked].astype(np.int64), self.pieces[picked]           # (B, T + 1)
        ok = (pieces[:, 1:] == pieces[:, :-1]) & (pieces[:, 1:] >= 0)
        if self.targets_ok is not None:
            ok &= self.targets_ok[picked][:, 1:]
        x, y = torch.from_numpy(rows[:, :-1]), torch.from_numpy(np.where(ok, rows[:, 1:], -1))
        return x, y, torch.from_numpy(pieces[:, :-1].astype(np.int64))


PACKINGS = {
    "random": RandomWindows,
    "bin": PackedRows,
}
