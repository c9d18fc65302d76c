"""load_dataset: source -> split -> filters -> curriculum -> tokenizer -> cached token arrays; get_batch.

    ds = load_dataset(cfg.data)                 # Dataset(train, val, tokenizer, val_bytes_per_token, meta)
    rng = np.random.default_rng(cfg.train.seed)
    x, y = get_batch(ds.train, 16, 128, rng)    # int64 tensors (B, T); y is x shifted left by one

The split is deterministic and content-based: the documents are laid end to end and the last
`val_fraction` of their characters is validation (the document straddling the cut is split there),
so a single text file splits exactly as nanoGPT does (first 90% train, last 10% val). Documents
within a split are joined with DOCUMENT_SEPARATOR. char and bpe vocabularies: char from the whole
corpus (so validation text always encodes), bpe trained on the training split only (a chat format's
markers kept as special tokens). Filters, curricula, packing and loss masks (documents.py) change
the training split only: validation is always the split's text, joined, so val metrics compare.
A tokenizer `hf` is loaded from data.tokenizer_path as it is (its content hash joins the cache key).
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field

import numpy as np
import torch

from foundry.data import cache
from foundry.data.constitution import load_constitution, system_message
from foundry.data.documents import encode_documents, filter_and_order, token_filters, train_spans
from foundry.data.filters import build_filter
from foundry.data.formats import SPECIAL_TOKENS
from foundry.data.hf_tokenizer import fixed_tokenizer
from foundry.data.sources import read_source
from foundry.data.tokenizer import build_tokenizer, tokenizer_from_json
from foundry.errors import UserError

DOCUMENT_SEPARATOR = "\n\n"
CACHE_VERSION = 1


@dataclass
class Dataset:
    train: np.ndarray            # 1-D token ids (memory-mapped uint16/uint32)
    val: np.ndarray
    tokenizer: object
    val_bytes_per_token: float   # UTF-8 bytes of the validation text per validation token (for bpb)
    meta: dict = field(default_factory=dict)
    train_offsets: np.ndarray | None = None  # (n_docs + 1,) document starts in train (data.packing: bin)
    train_mask: np.ndarray | None = None     # 1 where a train token carries loss (data.loss_on: assistant)


def split_documents(documents: list[str], val_fraction: float) -> tuple[list[str], list[str]]:
    """(train_docs, val_docs): the last `val_fraction` of all characters, in document order, is val."""
    total = sum(len(d) for d in documents)
    cut = int(total * (1.0 - val_fraction))
    train, val, seen = [], [], 0
    for doc in documents:
        if seen + len(doc) <= cut:
            train.append(doc)
        elif seen >= cut:
            val.append(doc)
        else:
            train.append(doc[:cut - seen])
            val.append(doc[cut - seen:])
        seen += len(doc)
    if not train or not val:
        raise UserError(f"data.val_fraction={val_fraction}: the source ({total} characters) is too small to split")
    return train, val


def _settings(data_cfg, constitution: str | None = None, reference=None, fixed=None) -> dict:
    """The config values that change the cached tokens (everything else can vary freely). Settings
    added later enter only when they differ from their defaults, so older cache entries stay valid."""
    settings = {"tokenizer": data_cfg.tokenizer, "val_fraction": data_cfg.val_fraction,
                "format": data_cfg.format, "curriculum": data_cfg.curriculum.by, "field": data_cfg.field,
                "bpe_vocab_size": data_cfg.bpe_vocab_size if data_cfg.tokenizer == "bpe" else None,
                "version": CACHE_VERSION}
    later = {"packing": data_cfg.packing if data_cfg.packing != "random" else None,
             "filters": data_cfg.filters or None,
             "loss_on": data_cfg.loss_on if data_cfg.loss_on != "all" else None,
             "constitution_sha256": cache.sha256_text(constitution) if constitution else None,
             "special_tokens": list(_special_tokens(data_cfg)) or None,
             "reference": reference.identity if reference is not None else None,
             # a given tokenizer (hf): its content, wherever the file lies
             "tokenizer_sha256": cache.sha256_text(fixed.to_json()) if fixed is not None else None}
    return {**settings, **{k: v for k, v in later.items() if v is not None}}


def _special_tokens(data_cfg) -> tuple:
    return SPECIAL_TOKENS.get(data_cfg.format, ()) if data_cfg.tokenizer == "bpe" else ()


def _build(source, data_cfg, reference=None, fixed=None):
    """Tokenize a source: (train ids, val ids, tokenizer, val UTF-8 bytes, extra arrays, filter report)."""
    train_docs, val_docs = split_documents(source.documents, data_cfg.val_fraction)
    spans = train_spans(source.spans, train_docs) if data_cfg.loss_on == "assistant" else None
    train_docs, spans, report = filter_and_order(train_docs, spans, data_cfg, reference)
    train_text = DOCUMENT_SEPARATOR.join(train_docs)
    val_text = DOCUMENT_SEPARATOR.join(val_docs)
    per_document = data_cfg.packing != "random" or spans is not None  # runs that need document offsets
    # char: the whole corpus (the per-document stream also ends with a separator)
    vocab_text = train_text if data_cfg.tokenizer == "bpe" else train_text + val_text + DOCUMENT_SEPARATOR * per_document
    tokenizer = fixed or build_tokenizer(data_cfg.tokenizer, vocab_text, data_cfg.bpe_vocab_size,
                                         _special_tokens(data_cfg))
    if any(build_filter(spec).needs_tokenizer for spec in data_cfg.filters):
        train_docs, spans, more = token_filters(train_docs, spans, data_cfg, tokenizer)
        report += more
        train_text = DOCUMENT_SEPARATOR.join(train_docs)
    dtype = cache.token_dtype(tokenizer.vocab_size)
    extra = {}
    if per_document:
        encoded = encode_documents(tokenizer, train_docs, spans, DOCUMENT_SEPARATOR)
        train, extra["train_offsets"] = encoded.tokens.astype(dtype), encoded.offsets
        if encoded.mask is not None:
            extra["train_mask"] = encoded.mask
    else:
        train = tokenizer.encode_array(train_text).astype(dtype)
    val = tokenizer.encode_array(val_text).astype(dtype)
    return train, val, tokenizer, len(val_text.encode("utf-8")), extra, report


def load_dataset(data_cfg, cache_dir=None, reference=None) -> Dataset:
    """Read, split, filter, order, tokenize and cache `data_cfg.source`; a second call with the same
    inputs is a cache hit. `reference` (identity, score(documents)) serves curricula that need a model."""
    constitution = system_message(load_constitution(data_cfg.constitution)) if data_cfg.constitution else None
    source = read_source(data_cfg.source, data_cfg.field, data_cfg.format, constitution)
    fixed = fixed_tokenizer(data_cfg)
    settings = _settings(data_cfg, constitution, reference, fixed)
    spec = data_cfg.source if data_cfg.source == "builtin" else os.path.abspath(
        os.path.expanduser(os.path.expandvars(data_cfg.source)))
    identity = cache.sha256_text(json.dumps({"source": spec, **settings}, sort_keys=True))[:12]
    key = cache.sha256_text(json.dumps({"source_hash": source.hash, **settings}, sort_keys=True))
    name = f"{identity}-{key[:16]}"
    root = cache.cache_root(cache_dir)

    entry, status = cache.lookup(root, name, key), "hit"
    if entry is None:
        train, val, tokenizer, val_bytes, extra, report = _build(source, data_cfg, reference, fixed)
        manifest = {"source": data_cfg.source, "source_hash": source.hash, "source_meta": source.meta,
                    "tokenizer": tokenizer.name, "vocab_size": tokenizer.vocab_size, "val_bytes": val_bytes,
                    "filter_report": report, **settings}
        try:
            entry = cache.publish(root, name, key, train, val, manifest, tokenizer.to_json(), extra)
            status = "miss"
        except OSError as e:  # an unwritable cache must not stop training: keep the arrays in memory
            entry = (train, val, dict(manifest, dtype=str(train.dtype)), tokenizer.to_json(), extra)
            status = f"off ({e.strerror or e})"
    train, val, manifest, tokenizer_json, extra = entry
    tokenizer = tokenizer_from_json(tokenizer_json)
    meta = {k: v for k, v in source.meta.items() if k != "file_list"}  # the full list stays in the manifest
    meta.update({"tokenizer": tokenizer.name, "vocab_size": tokenizer.vocab_size, "dtype": manifest["dtype"],
                 "train_tokens": int(len(train)), "val_tokens": int(len(val)), "val_bytes": manifest["val_bytes"],
                 "val_fraction": data_cfg.val_fraction, "format": data_cfg.format,
                 "curriculum": data_cfg.curriculum.by, "cache": status.split(" ")[0],
                 "cache_dir": os.path.join(root, "tokens", name)})
    if manifest.get("filter_report"):
        meta["filters"] = manifest["filter_report"]
    if "train_mask" in extra:
        meta["loss_tokens"] = int(np.asarray(extra["train_mask"]).sum())
    if status.startswith("off"):
        meta["cache_error"] = status
    return Dataset(train, val, tokenizer, manifest["val_bytes"] / max(1, len(val)), meta,
                   extra.get("train_offsets"), extra.get("train_mask"))


def get_batch(tokens: np.ndarray, batch_size: int, block_size: int, rng: np.random.Generator,
              share: float = 1.0, loss_mask=None):
    """(x, y) int64 tensors (B, T) at random offsets drawn from `rng`; y[:, t] is the token after x[:, t].

    `share` < 1 draws the windows from the first `share` of the tokens only (a curriculum's schedule);
    where `loss_mask` (one entry per token) is 0, the target is -1 (no loss).
    """
    tokens = np.asarray(tokens)  # a plain ndarray view of the memmap: skips the subclass overhead per gather
    n = len(tokens)
    if n <= block_size:
        raise UserError(f"data: a split of {n} tokens is too short for model.block_size={block_size}")
    high = n - block_size
    if share < 1.0:
        high = max(1, min(high, int(share * n)))
    starts = rng.integers(0, high, size=batch_size)                           # (B,)
    offsets = np.arange(block_size)                                           # (T,)
    # one gather for inputs and targets: (2, B, T) -> two contiguous (B, T) views of one tensor
    index = starts[None, :, None] + offsets[None, None, :] + np.array([0, 1])[:, None, None]
    both = torch.from_numpy(tokens[index].astype(np.int64))
    if loss_mask is not None:
        both[1][torch.from_numpy(np.asarray(loss_mask)[index[1]] == 0)] = -1
    return both[0], both[1]
