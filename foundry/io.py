"""Files that must never be half-written, and the JSON files a run leaves behind.

    atomic_write_text("RUN/summary.json", text)   # temp file + fsync + rename: all or nothing
    write_json(path, data)                       # the same, as indented JSON
    with atomic_folder("OUT") as tmp: ...        # fill tmp; renamed to OUT only if the block succeeds
    read_json(path)                              # dict, or None when missing or unreadable
    read_summary(run_dir)                        # RUN/summary.json, or None
    read_progress(run_dir)                       # RUN/progress.json, or {} before it exists

The ground floor with errors.py: imports nothing else from foundry, so every layer may use it.
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile

from foundry.errors import UserError


def atomic_write_text(path, text: str) -> None:
    """Write `text` to `path` through a temporary file in the same folder, then rename it."""
    path = os.fspath(path)
    folder = os.path.dirname(path) or "."
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=os.path.basename(path))
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def atomic_folder(path):
    """A temporary folder beside `path`, renamed to `path` when the block ends without an error and
    removed when it raises: readers see the whole folder or none. An existing `path` is refused."""
    path = os.path.abspath(os.fspath(path))
    if os.path.exists(path):
        raise UserError(f"{path}: already exists; choose another output folder")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = tempfile.mkdtemp(dir=os.path.dirname(path), prefix=f".tmp-{os.path.basename(path)}-")
    try:
        yield tmp
        os.rename(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def write_json(path, data, indent: int = 2) -> None:
    atomic_write_text(path, json.dumps(data, indent=indent) + "\n")


def read_json(path, strict: bool = False) -> dict | None:
    """The JSON object in `path`, or None when the file is missing (or, unless `strict`, unreadable).

    strict: a file that exists but is not valid JSON raises UserError naming it (state files
    that must not be silently started afresh)."""
    try:
        with open(os.fspath(path), encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as e:
        if strict:
            raise UserError(f"{os.fspath(path)}: not readable as JSON ({e})") from None
        return None


def read_summary(run_dir) -> dict | None:
    """A run's summary.json (written once, atomically, at the end of training), or None."""
    return read_json(os.path.join(os.fspath(run_dir), "summary.json"))


def read_progress(run_dir) -> dict:
    """A run's progress.json (rewritten atomically while it trains), or {} before it exists."""
    return read_json(os.path.join(os.fspath(run_dir), "progress.json")) or {}
