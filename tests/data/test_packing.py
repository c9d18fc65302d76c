"""Packing (data.packing: bin): first-fit decreasing, rows, targets, waste; python -m pytest tests/data/test_packing.py"""
import json
from types import SimpleNamespace

import numpy as np
import pytest

from foundry import catalog
from foundry.config import DataConfig
from foundry.data import DOCUMENT_SEPARATOR, load_dataset
from foundry.data.packing import PACKINGS, PackedRows, first_fit_decreasing, split_pieces
from foundry.training.loop import train
from foundry.training.objectives import NextToken

LENGTHS = [10, 6, 9, 7, 16, 20, 3]  # tokens per document; 20 > width 16 is split into 16 + 4


def _dataset(lengths, mask=None):
    """A dataset whose document i consists of tokens 100 + i, so every token names its document."""
    tokens = np.concatenate([np.full(n, 100 + i) for i, n in enumerate(lengths)]).astype(np.uint16)
    return SimpleNamespace(train=tokens, train_offsets=np.concatenate([[0], np.cumsum(lengths)]), train_mask=mask)


def test_first_fit_decreasing_places_each_item_in_the_first_row_with_room():
    row, column = first_fit_decreasing([16, 10, 9, 7, 6, 4, 3], 16)
    # by decreasing size: 16 -> row 0; 10 -> row 1; 9 -> row 2; 7 -> row 2 (9 + 7 = 16); 6 -> row 1; 4, 3 -> row 3
    assert row.tolist() == [0, 1, 2, 2, 1, 3, 3] and column.tolist() == [0, 0, 0, 9, 10, 0, 4]
    with pytest.raises(ValueError):
        first_fit_decreasing([17], 16)


def test_long_documents_are_split_into_pieces_of_the_row_width():
    start, length, document = split_pieces(np.array([0, 20, 23]), 16)
    assert start.tolist() == [0, 16, 20] and length.tolist() == [16, 4, 3] and document.tolist() == [0, 0, 1]


def test_rows_hold_whole_documents_and_report_the_waste():
    packed = PackedRows(_dataset(LENGTHS), block_size=15)  # rows of 16 tokens
    # pieces 16, 16, 10, 9, 7, 6, 4, 3 -> rows [16], [16], [10, 6], [9, 7], [4, 3]: 71 tokens in 80 slots
    assert packed.stats == {"packing": "bin", "rows": 5, "documents": 7, "pieces": 8, "split_documents": 1,
                            "tokens": 71, "padding_tokens": 9, "padding_share": round(9 / 80, 4),
                            "boundary_share": round(8 / 71, 4)}
    for row, pieces in zip(packed.rows, packed.pieces):
        for piece in set(pieces.tolist()) - {-1}:
            where = np.flatnonzero(pieces == piece)
            assert np.all(np.diff(where) == 1)                          # a piece is one contiguous run
            assert len(set(row[where].tolist())) == 1                   # ... of one document's tokens
    counts = {d: int((packed.rows[packed.pieces >= 0] == 100 + d).sum()) for d in range(len(LENGTHS))}
    assert counts == dict(enumerate(LENGTHS))                           # every token packed exactly once


def test_targets_never_cross_a_document_and_padding_carries_no_loss():
    packed = PackedRows(_dataset(LENGTHS), block_size=15)
    x, y, doc_ids = packed.batch(64, np.random.default_rng(0))
    assert x.shape == y.shape == doc_ids.shape == (64, 15)
    valid = y >= 0
    assert valid.any() and (~valid).any()
    assert (x[valid] == y[valid]).all()                     # tokens name their document: a target is from the same one
    assert (doc_ids[valid] >= 0).all()


def test_the_loss_mask_travels_with_the_rows():
    mask = np.concatenate([np.arange(n) % 2 for n in LENGTHS]).astype(np.uint8)  # every other token
    x, y, _ = PackedRows(_dataset(LENGTHS, mask), block_size=15).batch(64, np.random.default_rng(0))
    x2, y2, _ = PackedRows(_dataset(LENGTHS), block_size=15).batch(64, np.random.default_rng(0))
    assert (x == x2).all() and 0 < (y >= 0).sum() < (y2 >= 0).sum()


def test_bin_packing_end_to_end_on_real_short_documents(shared_data, tmp_path):
    source = f"{shared_data}/gsm8k/test.jsonl"
    cfg = catalog.from_dict({"data": {"source": source, "field": "question", "packing": "bin"},
                             "model": {"n_layer": 1, "n_head": 2, "n_embd": 32, "block_size": 512},
                             "train": {"batch_size": 4}, "budget": {"steps": 3}, "eval": {"bytes": 2048}})
    objective = NextToken(cfg, "cpu")
    stats = objective.meta["packing"]
    assert stats["documents"] > 1000 and stats["rows"] < stats["documents"] / 1.8  # about two questions a row
    assert 0 <= stats["padding_share"] < 0.05                                     # short documents pack tightly
    offsets = objective.data.train_offsets
    first = objective.tokenizer.decode(objective.data.train[offsets[0]:offsets[1]].tolist())
    questions = [json.loads(line)["question"] for line in open(source)]
    assert first == questions[0] + DOCUMENT_SEPARATOR
    random = load_dataset(DataConfig(source=source, field="question"))
    assert np.array_equal(random.val, objective.data.val)                         # validation is untouched
    summary = train(cfg, tmp_path / "run", log=lambda *_: None)
    assert summary["status"] == "done" and summary["data"]["packing"]["rows"] == stats["rows"]


def test_packing_registry_names_are_the_config_values():
    assert set(PACKINGS) == {"random", "bin"}
    with pytest.raises(catalog.ConfigError, match="valid: bin, random"):
        catalog.from_dict({"data": {"packing": "greedy"}, "budget": {"steps": 1}})
