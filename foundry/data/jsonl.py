"""Reading JSONL (and plain text) files with errors that name the file and line.

    records = read_jsonl("gsm8k/test.jsonl", required=("question", "answer"))
    records[0]["_line"]        # 1-based line number, for later error messages
    lines = read_lines("HumanEval.jsonl.gz")      # .gz is read transparently

Used by the preference-pair loader and by the benchmark tasks.
"""
from __future__ import annotations

import gzip
import json

from foundry.errors import UserError


def read_lines(path: str) -> list[str]:
    opener = gzip.open if path.endswith(".gz") else open
    try:
        with opener(path, "rt", encoding="utf-8") as f:
            return f.read().splitlines()
    except (OSError, EOFError) as e:
        raise UserError(f"{path}: cannot read ({getattr(e, 'strerror', None) or e})") from None
    except UnicodeDecodeError as e:
        raise UserError(f"{path}: not UTF-8 text (byte {e.start})") from None


def read_jsonl(path: str, required: tuple = (), what: str = "records") -> list[dict]:
    """Objects of a JSONL file (blank lines skipped); each record gets `_line` (1-based)."""
    records = []
    for lineno, line in enumerate(read_lines(path), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as e:
            raise UserError(f"{path}:{lineno}: invalid JSON ({e.msg})") from None
        if not isinstance(record, dict):
            raise UserError(f"{path}:{lineno}: expected an object, got {type(record).__name__}")
        for key in required:
            if key not in record:
                raise UserError(f"{path}:{lineno}: missing field {key!r}")
        record["_line"] = lineno
        records.append(record)
    if not records:
        raise UserError(f"{path}: no {what}")
    return records
