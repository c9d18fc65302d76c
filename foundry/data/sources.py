"""Sources: turn `data.source` into a list of documents (strings) plus a content hash.

    src = read_source("builtin")                                  # Python stdlib sources, no download
    src = read_source("$FOUNDRY_DATA/tinyshakespeare.txt")        # one text file = one document
    src = read_source("corpus/")  or  read_source("corpus/*.md")  # a folder (recursive) or a glob
    src = read_source("chats.jsonl", field="text")                # one document per JSONL record
    src = read_source("chats.jsonl", fmt="chatml")                # records rendered by a chat template
    src.spans                                                     # ... and where their assistant turns are
    src.documents, src.hash, src.meta

How a source string is read, in order: the word `builtin`; a string with glob characters (* ? [);
an existing folder; a path ending in `.jsonl`; otherwise a text file. Paths expand `$VARS` and `~`;
an unset variable or a missing file is a UserError naming the path. Files are read as UTF-8.
"""
from __future__ import annotations

import glob
import hashlib
import json
import os
import re
import sys
from dataclasses import dataclass, field

from foundry.data.formats import render_spans
from foundry.errors import UserError

# cap for the built-in corpus: every top-level stdlib module fits on CPython 3.10-3.13 (~4-5 MB)
BUILTIN_MAX_BYTES = 6_000_000


@dataclass
class Source:
    kind: str                      # builtin | text | folder | glob | jsonl
    documents: list[str]
    hash: str                      # sha256 over the names and contents that were read
    meta: dict = field(default_factory=dict)
    spans: list | None = None      # chat formats: per document, the (start, end) chars of assistant turns


def expand_path(spec: str, key: str = "data.source") -> str:
    """Expand $VARS and ~; an unset variable is an error naming it rather than a confusing missing file."""
    expanded = os.path.expanduser(os.path.expandvars(spec))
    unset = re.findall(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)", expanded)
    if unset:
        raise UserError(f"{key}: environment variable {unset[0]} is not set (in {spec!r})")
    return expanded


def _read_text(path: str, digest) -> str:
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as e:
        raise UserError(f"{path}: cannot read ({e.strerror})") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise UserError(f"{path}: not UTF-8 text (byte {e.start})") from None
    digest.update(len(raw).to_bytes(8, "little"))
    digest.update(raw)
    return text


def read_builtin() -> Source:
    """The Python standard library's top-level .py modules, sorted by name, up to BUILTIN_MAX_BYTES."""
    stdlib = os.path.dirname(os.__file__)
    names = sorted(n for n in os.listdir(stdlib) if n.endswith(".py") and os.path.isfile(os.path.join(stdlib, n)))
    digest = hashlib.sha256()
    documents, files, total = [], [], 0
    for name in names:
        with open(os.path.join(stdlib, name), "rb") as f:
            raw = f.read()
        if total + len(raw) > BUILTIN_MAX_BYTES:
            break
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            continue  # a rare legacy-encoded module: skipping it keeps the corpus clean and deterministic
        digest.update(name.encode() + b"\0" + len(raw).to_bytes(8, "little") + raw)
        documents.append(text)
        files.append(name)
        total += len(raw)
    if not documents:
        raise UserError(f"data.source: builtin corpus found no .py files in {stdlib}")
    meta = {"stdlib_dir": stdlib, "python": sys.version.split()[0], "files": len(files),
            "first_file": files[0], "last_file": files[-1], "bytes": total, "file_list": files}
    return Source("builtin", documents, digest.hexdigest(), meta)


def _read_files(kind: str, paths: list[str], spec: str) -> Source:
    if not paths:
        raise UserError(f"data.source: no files match {spec!r}")
    digest = hashlib.sha256()
    documents = []
    for p in paths:
        digest.update(os.path.basename(p).encode() + b"\0")
        documents.append(_read_text(p, digest))
    meta = {"files": len(paths), "first_file": paths[0], "last_file": paths[-1]}
    return Source(kind, documents, digest.hexdigest(), meta)


def _folder_files(folder: str) -> list[str]:
    out = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        out.extend(os.path.join(root, f) for f in files if not f.startswith("."))
    return sorted(out, key=lambda p: os.path.relpath(p, folder))


def read_jsonl(path: str, field: str = "text", fmt: str = "none", system: str | None = None) -> Source:
    """One document per record: record[field], or the record rendered in chat format `fmt`
    (with `system`, a constitution's principles, as its first system message)."""
    digest = hashlib.sha256()
    text = _read_text(path, digest)
    documents, spans = [], []
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        where = f"{path}:{lineno}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as e:
            raise UserError(f"{where}: invalid JSON ({e.msg})") from None
        if fmt != "none":
            rendered, turns = render_spans(fmt, record, where, system)
            documents.append(rendered)
            spans.append(turns)
        elif not isinstance(record, dict) or not isinstance(record.get(field), str):
            raise UserError(f"{where}: expected an object with a string field {field!r} (data.field)")
        else:
            documents.append(record[field])
    if not documents:
        raise UserError(f"{path}: no records")
    if system:
        digest.update(b"system\0" + system.encode())
    return Source("jsonl", documents, digest.hexdigest(), {"records": len(documents)}, spans if fmt != "none" else None)


def read_source(spec: str, field: str = "text", fmt: str = "none", system: str | None = None) -> Source:
    """Read `data.source`; see the module docstring for how the string is interpreted."""
    if spec == "builtin":
        source = read_builtin()
    else:
        path = expand_path(spec)
        if any(c in path for c in "*?["):
            source = _read_files("glob", sorted(p for p in glob.glob(path, recursive=True) if os.path.isfile(p)), spec)
        elif os.path.isdir(path):
            source = _read_files("folder", _folder_files(path), spec)
        elif not os.path.exists(path):
            raise UserError(f"data.source: {path} does not exist" + (f" (from {spec!r})" if path != spec else ""))
        elif path.endswith(".jsonl"):
            source = read_jsonl(path, field, fmt, system)
        else:
            source = _read_files("text", [path], spec)
    if fmt != "none" and source.kind != "jsonl":
        raise UserError(f"data.format: {fmt!r} needs a .jsonl source of conversations, got {spec!r}")
    source.meta.update({"source": spec, "kind": source.kind, "documents": len(source.documents),
                        "source_hash": source.hash})
    return source
