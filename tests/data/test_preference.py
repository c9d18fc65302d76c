"""Preference pairs JSONL loading and its errors: python -m pytest tests/data/test_preference.py"""
import json

import pytest

from foundry.data import load_preference_pairs
from foundry.errors import UserError


def write(path, lines):
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_loads_pairs_skipping_blank_lines_and_keeping_extra_keys(tmp_path, monkeypatch):
    rows = [{"prompt": "Q1", "chosen": "good", "rejected": "bad", "id": 3},
            {"prompt": "Q2 ü", "chosen": "yes", "rejected": "no"}]
    write(tmp_path / "prefs.jsonl", [json.dumps(rows[0]), "", json.dumps(rows[1])])
    monkeypatch.setenv("PREFS_DIR", str(tmp_path))
    assert load_preference_pairs("$PREFS_DIR/prefs.jsonl") == rows
    assert load_preference_pairs(tmp_path / "prefs.jsonl") == rows


@pytest.mark.parametrize("lines, message", [
    (['{"prompt": "a", "chosen": "b", "rejected": "c"}', '{"prompt": "a", "chosen": "b"'], r":2: invalid JSON"),
    (['{"prompt": "a", "chosen": "b"}'], r":1: field 'rejected' must be a string"),
    (['{"prompt": "a", "chosen": 5, "rejected": "c"}'], r":1: field 'chosen' must be a string"),
    (['["a", "b", "c"]'], r":1: expected an object"),
    (["", "  "], "no preference pairs"),
])
def test_malformed_files_name_file_and_line(tmp_path, lines, message):
    path = write(tmp_path / "bad.jsonl", lines)
    with pytest.raises(UserError, match=message) as info:
        load_preference_pairs(path)
    assert str(path) in str(info.value)


def test_missing_file_and_unset_variable(tmp_path, monkeypatch):
    with pytest.raises(UserError, match="missing.jsonl: cannot read"):
        load_preference_pairs(tmp_path / "missing.jsonl")
    monkeypatch.delenv("FOUNDRY_NOT_SET", raising=False)
    with pytest.raises(UserError, match="FOUNDRY_NOT_SET is not set"):
        load_preference_pairs("$FOUNDRY_NOT_SET/prefs.jsonl")
