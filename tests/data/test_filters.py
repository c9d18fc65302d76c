"""Filters and deduplication: python -m pytest tests/data/test_filters.py"""
import json
import random

import pytest

from foundry import catalog
from foundry.config import DataConfig
from foundry.data import load_dataset
from foundry.data.dedupe import near_duplicate_pairs
from foundry.data.filters import FILTERS, apply_filters, build_filter
from foundry.data.tokenizer import ByteTokenizer
from foundry.errors import UserError

PROSE = ("The river runs past the old mill and the children walk to school with their dogs. "
         "In the evening the farmers return from the fields, and the bakery closes its doors. "
         "Nobody in the village remembers a winter as cold as that one, and many stayed at home. ")


def _essay(i: int, words: int = 90) -> str:
    """Prose-like text without repetition: sentences of words drawn (seed i) from PROSE's vocabulary."""
    rng = random.Random(i)
    vocabulary = sorted(set(PROSE.lower().replace(",", "").replace(".", "").split()))
    sentences = [" ".join(rng.choice(vocabulary) for _ in range(9)).capitalize() + "." for _ in range(words // 9)]
    return " ".join(sentences)


# every registered filter: a document it must remove and one it must keep (at its defaults)
CASES = {
    "length": ({"min_chars": 50, "max_chars": 2000}, "too short", _essay(1)),
    "exact_dup": ({}, None, None),  # needs two documents: tested below
    "near_dup": ({}, None, None),
    "gopher_repetition": ({}, "\n".join(["the same line again"] * 20), _essay(2)),
    "gopher_quality": ({}, "### ### ### " * 30 + _essay(3), _essay(3)),
}


def test_every_filter_is_covered():
    assert set(CASES) == set(FILTERS)


@pytest.mark.parametrize("name", [n for n, (_, bad, _) in CASES.items() if bad])
def test_each_filter_removes_its_case_and_keeps_good_prose(name):
    settings, bad, good = CASES[name]
    kept, report = apply_filters([bad, good], [{"name": name, **settings}])
    assert kept == [1], report
    assert report[0]["removed_documents"] == 1 and report[0]["removed_chars"] == len(bad)
    (reason,) = report[0]["reasons"]
    assert report[0]["reasons"][reason] == {"documents": 1, "chars": len(bad)}


def test_exact_duplicates_compare_normalized_text_and_keep_the_first():
    docs = ["Hello,   World!", "hello world", "Hello there", "HELLO WORLD."]
    kept, report = apply_filters(docs, [{"name": "exact_dup"}])
    assert kept == [0, 2] and report[0]["reasons"] == {"exact duplicate": {"documents": 2, "chars": 23}}
    kept, _ = apply_filters(docs, [{"name": "exact_dup", "normalize": False}])
    assert kept == [0, 1, 2, 3]


def test_near_duplicates_are_found_and_distinct_documents_kept():
    originals = [_essay(i) for i in range(30)]
    edited = originals[4].replace("river", "stream", 1)            # one word changed: a near duplicate
    docs = originals + [edited, originals[9] + " The end."]
    pairs = near_duplicate_pairs(docs, threshold=0.8)
    assert sorted((i, j) for i, j, _ in pairs) == [(30, 4), (31, 9)]
    assert all(sim >= 0.8 for _, _, sim in pairs)
    kept, report = apply_filters(docs, [{"name": "near_dup", "threshold": 0.8}])
    assert kept == list(range(30)) and report[0]["removed_documents"] == 2


def test_token_length_filters_use_the_tokenizer():
    flt = build_filter({"name": "length", "max_tokens": 5})
    assert flt.needs_tokenizer
    assert flt.reasons(["abc", "héllo"], ByteTokenizer()) == [None, "more than 5 tokens"]  # é is 2 bytes


def test_filters_run_in_order_and_report_each_step():
    docs = ["x", _essay(1), _essay(1), _essay(2)]
    kept, report = apply_filters(docs, [{"name": "length", "min_chars": 10}, {"name": "exact_dup"}])
    assert kept == [1, 3]
    assert [(r["filter"], r["input_documents"], r["removed_documents"]) for r in report] == \
        [("length", 4, 1), ("exact_dup", 3, 1)]


@pytest.mark.parametrize("spec,message", [
    ({"name": "lenght"}, "valid: exact_dup, gopher_quality"),
    ({"name": "length", "min_char": 3}, "unknown setting 'min_char'"),
    ({"name": "length", "min_chars": "3"}, "expected a non-negative int"),
    ({"name": "near_dup", "threshold": -1.0}, "non-negative float"),
    ("length", "expected a mapping"),
])
def test_bad_filter_specs_are_config_errors_naming_the_entry(spec, message):
    with pytest.raises(catalog.ConfigError, match=rf"data.filters\[0\].*{message}"):
        catalog.from_dict({"data": {"filters": [spec]}, "budget": {"steps": 1}})
    with pytest.raises(UserError):
        build_filter(spec)


def test_filters_change_the_training_split_only_and_the_report_reaches_the_dataset(tmp_path):
    docs = [_essay(i) for i in range(40)] + [_essay(3)] * 5 + ["tiny"] * 5 + [_essay(i) for i in range(40, 60)]
    path = tmp_path / "docs.jsonl"
    path.write_text("\n".join(json.dumps({"text": d}) for d in docs) + "\n")
    plain = load_dataset(DataConfig(source=str(path)))
    cfg = DataConfig(source=str(path), filters=[{"name": "length", "min_chars": 10}, {"name": "exact_dup"}])
    filtered = load_dataset(cfg)
    assert (plain.val == filtered.val).all()
    removed = [(r["filter"], r["removed_documents"]) for r in filtered.meta["filters"]]
    assert removed == [("length", 5), ("exact_dup", 5)]
    assert len(plain.train) - len(filtered.train) == 5 * (len(_essay(3)) + 2) + 5 * (4 + 2)
    assert load_dataset(cfg).meta["cache"] == "hit" and load_dataset(cfg).meta["filters"] == filtered.meta["filters"]
