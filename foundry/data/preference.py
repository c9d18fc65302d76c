"""Preference pairs: JSONL with one {"prompt", "chosen", "rejected"} object per line (DPO, the preference task).

    pairs = load_preference_pairs("$FOUNDRY_DATA/prefs.jsonl")
    pairs[0]["prompt"], pairs[0]["chosen"], pairs[0]["rejected"]

Blank lines are skipped; extra keys are kept. A missing file, invalid JSON, a missing or non-string
field, or an empty file is a UserError naming the file and line.
"""
from __future__ import annotations

from foundry.data.jsonl import read_jsonl
from foundry.data.sources import expand_path
from foundry.errors import UserError

PAIR_FIELDS = ("prompt", "chosen", "rejected")


def load_preference_pairs(path) -> list[dict]:
    path = expand_path(str(path), key="preference pairs")
    pairs = read_jsonl(path, what="preference pairs")
    for record in pairs:
        lineno = record.pop("_line")
        for key in PAIR_FIELDS:
            if not isinstance(record.get(key), str):
                raise UserError(f"{path}:{lineno}: field {key!r} must be a string, got {record.get(key)!r}"[:300])
    return pairs
