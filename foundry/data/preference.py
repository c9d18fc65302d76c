"""Preference pairs: JSONL with one {"prompt", "chosen", "rejected"} object per line (DPO, the preference task).

    pairs = load_preference_pairs("$FOUNDRY_DATA/prefs.jsonl")
    pairs[0]["prompt"], pairs[0]["chosen"], pairs[0]["rejected"]

Blank lines are skipped; extra keys are kept. A missing file, invalid JSON, a missing or non-string
field, or an empty file is a UserError naming the file and line.
"""
from __future__ import annotations

import json

from foundry.data.sources import expand_path
from foundry.errors import UserError

PAIR_FIELDS = ("prompt", "chosen", "rejected")


def load_preference_pairs(path) -> list[dict]:
    path = expand_path(str(path), key="preference pairs")
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except OSError as e:
        raise UserError(f"{path}: cannot read ({e.strerror})") from None
    except UnicodeDecodeError as e:
        raise UserError(f"{path}: not UTF-8 text (byte {e.start})") from None
    pairs = []
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as e:
            raise UserError(f"{path}:{lineno}: invalid JSON ({e.msg})") from None
        if not isinstance(record, dict):
            raise UserError(f"{path}:{lineno}: expected an object with {', '.join(PAIR_FIELDS)}")
        for key in PAIR_FIELDS:
            if not isinstance(record.get(key), str):
                raise UserError(f"{path}:{lineno}: field {key!r} must be a string, got {record.get(key)!r}"[:300])
        pairs.append(record)
    if not pairs:
        raise UserError(f"{path}: no preference pairs")
    return pairs
