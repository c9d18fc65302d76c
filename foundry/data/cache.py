"""Token cache: tokenized splits as memory-mapped .npy arrays plus a manifest, published atomically.

    root = cache_root(cache_dir)              # argument, else $FOUNDRY_CACHE, else ~/.cache/foundry
    entry = lookup(root, name, key)           # (train, val, manifest, tokenizer_json, extra arrays) or None
    entry = publish(root, name, key, train, val, manifest, tokenizer_json, extra={"train_offsets": ...})

Layout: ROOT/tokens/NAME/{train.npy, val.npy, tokenizer.json, manifest.json} (+ any extra NAME.npy). NAME is
"<identity>-<key>": identity names the source and settings, key also covers the source's content
hash, so a changed source gets a new entry (and publish removes the stale one of the same identity).
An entry is built in a ".tmp-*" folder and renamed into place in one step: a reader sees a complete
entry or none, two processes building at once both succeed (the loser discards its copy), and a crash
leaves only a .tmp folder that lookups ignore.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile

import numpy as np

MANIFEST = "manifest.json"


def cache_root(cache_dir=None) -> str:
    root = cache_dir or os.environ.get("FOUNDRY_CACHE") or os.path.join("~", ".cache", "foundry")
    return os.path.abspath(os.path.expanduser(os.fspath(root)))


def token_dtype(vocab_size: int):
    """The narrowest unsigned dtype that holds every id: uint16 below 65536 symbols."""
    return np.uint16 if vocab_size < 2**16 else np.uint32


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _entry_dir(root: str, name: str) -> str:
    return os.path.join(root, "tokens", name)


def lookup(root: str, name: str, key: str):
    """The published entry NAME if it is complete and matches `key`, else None."""
    folder = _entry_dir(root, name)
    try:
        with open(os.path.join(folder, MANIFEST), encoding="utf-8") as f:
            manifest = json.load(f)
        with open(os.path.join(folder, "tokenizer.json"), encoding="utf-8") as f:
            tokenizer_json = f.read()
        train = np.load(os.path.join(folder, "train.npy"), mmap_mode="r")
        val = np.load(os.path.join(folder, "val.npy"), mmap_mode="r")
        extra = {name: np.load(os.path.join(folder, f"{name}.npy"), mmap_mode="r")
                 for name in manifest.get("arrays", [])}
    except (OSError, ValueError):
        return None  # absent, or removed by a concurrent rebuild: the caller builds it
    ok = (manifest.get("key") == key
          and manifest.get("tokenizer_sha256") == sha256_text(tokenizer_json)
          and len(train) == manifest.get("train_tokens") and len(val) == manifest.get("val_tokens")
          and str(train.dtype) == manifest.get("dtype") == str(val.dtype))
    return (train, val, manifest, tokenizer_json, extra) if ok else None


def _write_npy(path: str, array: np.ndarray) -> None:
    with open(path, "wb") as f:
        np.save(f, array)
        f.flush()
        os.fsync(f.fileno())


def publish(root: str, name: str, key: str, train: np.ndarray, val: np.ndarray, manifest: dict,
            tokenizer_json: str, extra: dict | None = None):
    """Write the entry atomically and return it (as lookup would), memory-mapped from disk.
    `extra`: more named arrays (document offsets, a loss mask), stored as NAME.npy beside train.npy."""
    extra = extra or {}
    tokens_dir = os.path.join(root, "tokens")
    os.makedirs(tokens_dir, exist_ok=True)
    tmp = tempfile.mkdtemp(dir=tokens_dir, prefix=".tmp-")
    final = _entry_dir(root, name)
    try:
        _write_npy(os.path.join(tmp, "train.npy"), train)
        _write_npy(os.path.join(tmp, "val.npy"), val)
        for array_name, array in extra.items():
            _write_npy(os.path.join(tmp, f"{array_name}.npy"), array)
        with open(os.path.join(tmp, "tokenizer.json"), "w", encoding="utf-8") as f:
            f.write(tokenizer_json)
        manifest = dict(manifest, key=key, tokenizer_sha256=sha256_text(tokenizer_json),
                        dtype=str(train.dtype), train_tokens=len(train), val_tokens=len(val), arrays=sorted(extra))
        with open(os.path.join(tmp, MANIFEST), "w", encoding="utf-8") as f:
            json.dump(manifest, f, indent=1, sort_keys=True)
        if os.path.isdir(final) and lookup(root, name, key) is None:
            shutil.rmtree(final, ignore_errors=True)  # a broken or stale entry under the same name
        try:
            os.rename(tmp, final)  # atomic; fails if another process published first
        except OSError:
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _remove_stale(tokens_dir, name)
    entry = lookup(root, name, key)
    if entry is None:
        raise OSError(f"token cache entry {final} could not be published")
    return entry


def _remove_stale(tokens_dir: str, name: str) -> None:
    """Drop entries of the same identity (source + settings) built from older source contents."""
    identity = name.split("-", 1)[0] + "-"
    for other in os.listdir(tokens_dir):
        if other.startswith(identity) and other != name:
            shutil.rmtree(os.path.join(tokens_dir, other), ignore_errors=True)
