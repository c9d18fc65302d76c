"""Offline teacher logits: the teacher's top-k log-probabilities for a student's training stream,
written once and memory-mapped by every student trial that trains on that stream.

    write_cache("runs/teacher", cfg, "caches/t", top_k=16, seeds=[1, 2, 3])   # foundry distill cache
    cache = TeacherCache(cfg.train.distill.cache, cfg, tokenizer)             # checks stream and tokenizer
    index, logp, tail = cache.lookup(x)          # x (B, T) -> (B, T, k) ids, (B, T, k) log-probs, (B, T)

CACHE/ holds manifest.json, keys.npy (R, 16) uint8, index.npy (R, T, K) uint16|uint32, logp.npy
(R, T, K) float16 and tail.npy (R, T) float32: for each of R distinct windows of T tokens, at every
position the teacher's K most likely next tokens with their log-probabilities at temperature 1, and
the log of the mass of all the other tokens (the missing mass, explicit). Written in a temporary
folder and renamed into place.

The training stream is what the trainer draws: for each seed, max_steps x grad_accum micro-batches
of batch_size windows (get_batch with numpy's generator seeded by train.seed). Each distinct window
is stored once under a hash of its tokens (data.packing random without a curriculum only: packed
rows and a curriculum's schedule train from a live teacher); the teacher's output depends on nothing else, so a lookup
is exact whatever the order, a resume or a shorter run, and a student whose stream differs gets an
error naming what the cache was written for. A student may use top_k <= K: the tail then also
holds the entries past its k.
"""
from __future__ import annotations

import hashlib
import os
import time

import numpy as np
import torch

from foundry.data import get_batch, load_dataset
from foundry.data.cache import sha256_text, token_dtype
from foundry.errors import UserError
from foundry.io import atomic_folder, read_json, write_json

CHUNK = 32  # windows per teacher forward pass


def window_key(row) -> bytes:
    """16-byte key of one window of token ids (an int64 tensor or array of T ids)."""
    return hashlib.blake2b(np.ascontiguousarray(row, dtype=np.int64).tobytes(), digest_size=16).digest()


def stream_identity(cfg, dataset) -> dict:
    """What decides the windows a trainer draws (besides its seed and length)."""
    return {"source_hash": dataset.meta.get("source_hash"), "tokenizer_sha256": sha256_text(dataset.tokenizer.to_json()),
            "train_tokens": int(len(dataset.train)), "batch_size": cfg.train.batch_size,
            "block_size": cfg.model.block_size}


def stream_windows(tokens, cfg, seeds, micro_batches: int):
    """(distinct windows (R, T) int64 in order of first use, their keys) of the training streams."""
    keys, rows = {}, []
    for seed in seeds:
        rng = np.random.default_rng(seed)
        for _ in range(micro_batches):
            x, _ = get_batch(tokens, cfg.train.batch_size, cfg.model.block_size, rng)
            for row in x.numpy():
                key = window_key(row)
                if key not in keys:
                    keys[key] = len(rows)
                    rows.append(row)
    return np.stack(rows), list(keys)


def write_cache(teacher_path, cfg, out, top_k: int = 16, seeds=None, steps: int = 0, log=print) -> dict:
    """The teacher's top-k for cfg's training stream (seeds default [train.seed]) into the new folder `out`."""
    from foundry.distill.teacher import Teacher, top_k as take_top_k
    start = time.perf_counter()
    seeds = list(seeds or [cfg.train.seed])
    steps = steps or cfg.max_steps()
    if not steps:
        raise UserError("distill cache: a budget in seconds has no fixed stream; give --steps")
    if os.path.exists(out):
        raise UserError(f"{out}: already exists; choose another --out")
    if cfg.data.packing != "random" or cfg.data.curriculum.by != "none":
        raise UserError(f"distill cache: the stream of data.packing={cfg.data.packing} with curriculum "
                        f"{cfg.data.curriculum.by} is not cached (random windows without a curriculum only)")
    teacher = Teacher(teacher_path, cfg)
    dataset = load_dataset(cfg.data)
    teacher.check(dataset.tokenizer, cfg)
    vocab = teacher.cfg.model.vocab_size
    if not 0 < top_k <= vocab:
        raise UserError(f"--top-k: must be in [1, {vocab}] (the teacher's vocabulary), got {top_k}")
    micro_batches = steps * cfg.train.grad_accum
    windows, keys = stream_windows(dataset.train, cfg, seeds, micro_batches)
    R, T = windows.shape
    log(f"caching {teacher_path} top-{top_k} for {R:,} distinct windows of {T} tokens "
        f"({len(seeds)} seed(s) x {micro_batches:,} micro-batches of {cfg.train.batch_size})")
    with atomic_folder(out) as tmp:
        index = np.lib.format.open_memmap(os.path.join(tmp, "index.npy"), "w+", token_dtype(vocab), (R, T, top_k))
        logp = np.lib.format.open_memmap(os.path.join(tmp, "logp.npy"), "w+", np.float16, (R, T, top_k))
        tail = np.lib.format.open_memmap(os.path.join(tmp, "tail.npy"), "w+", np.float32, (R, T))
        shown = 0.0
        for i in range(0, R, CHUNK):
            logits = teacher(torch.from_numpy(windows[i:i + CHUNK]))
            top_index, top_logp, rest = (t.cpu() for t in take_top_k(logits, top_k))
            index[i:i + CHUNK], logp[i:i + CHUNK] = top_index.numpy(), top_logp.numpy()
            tail[i:i + CHUNK] = rest.numpy()
            if time.perf_counter() - shown > 10 or i + CHUNK >= R:
                shown = time.perf_counter()
                log(f"  {min(R, i + CHUNK):,}/{R:,} windows")
        for array in (index, logp, tail):
            array.flush()
        np.save(os.path.join(tmp, "keys.npy"), np.frombuffer(b"".join(keys), dtype=np.uint8).reshape(R, 16))
        manifest = {"format": 1, "teacher": os.path.abspath(teacher_path), "teacher_config": teacher.cfg.name,
                    "top_k": top_k, "vocab_size": vocab, "windows": R, "seeds": seeds,
                    "micro_batches": micro_batches, "grad_accum": cfg.train.grad_accum,
                    "stream": stream_identity(cfg, dataset), "temperature": 1.0,
                    "bytes": int(index.nbytes + logp.nbytes + tail.nbytes + R * 16),
                    "seconds": round(time.perf_counter() - start, 3)}
        write_json(os.path.join(tmp, "manifest.json"), manifest)
    return {**manifest, "out": os.path.abspath(out)}


class TeacherCache:
    """A cache opened for one student: the stream and tokenizer checked, arrays memory-mapped."""

    def __init__(self, path, cfg, dataset):
        self.path = os.path.expandvars(path)
        self.manifest = manifest = read_json(os.path.join(self.path, "manifest.json"))
        if manifest is None:
            raise UserError(f"train.distill.cache: {path} is not a teacher cache (no readable manifest.json); "
                            "write one with `foundry distill cache`")
        where = f"train.distill.cache ({path})"
        identity = stream_identity(cfg, dataset)
        for key, value in identity.items():
            if manifest["stream"].get(key) != value:
                raise UserError(f"{where}: written for {key}={manifest['stream'].get(key)!r}, this run has {value!r}; "
                                "the training stream differs: write a cache for this config")
        if cfg.train.seed not in manifest["seeds"]:
            raise UserError(f"{where}: written for train.seed in {manifest['seeds']}, this run has {cfg.train.seed}")
        steps = cfg.max_steps()
        if steps and steps * cfg.train.grad_accum > manifest["micro_batches"]:
            raise UserError(f"{where}: holds {manifest['micro_batches']} micro-batches per seed; this run draws "
                            f"{steps * cfg.train.grad_accum} (budget x train.grad_accum)")
        k = cfg.train.distill.top_k
        if k > manifest["top_k"] or (k == 0 and manifest["top_k"] != manifest["vocab_size"]):
            raise UserError(f"{where}: holds the teacher's top {manifest['top_k']} of {manifest['vocab_size']} tokens; "
                            f"train.distill.top_k={k} (0 = all) needs more")
        self.top_k = k or manifest["top_k"]
        self.vocab_size = manifest["vocab_size"]
        load = {name: np.load(os.path.join(self.path, f"{name}.npy"), mmap_mode="r")
                for name in ("keys", "index", "logp", "tail")}
        self.index, self.logp, self.tail = load["index"], load["logp"], load["tail"]
        self.rows = {bytes(key): row for row, key in enumerate(np.asarray(load["keys"]))}

    def lookup(self, x):
        """x (B, T) int64 on the CPU -> (index (B, T, k) int64, logp (B, T, k) fp32, tail (B, T) fp32)."""
        try:
            rows = np.array([self.rows[window_key(row)] for row in x.numpy()])
        except KeyError:
            raise UserError(f"train.distill.cache ({self.path}): a training window is not in the cache "
                            f"(written for seeds {self.manifest['seeds']}); the stream differs") from None
        K, k = self.manifest["top_k"], self.top_k
        index = torch.from_numpy(self.index[rows, :, :k].astype(np.int64))
        logp = torch.from_numpy(self.logp[rows].astype(np.float32))  # (B, T, K)
        tail = torch.from_numpy(self.tail[rows].astype(np.float32))
        if k < K:  # the entries past the student's k join the missing mass
            tail = torch.logaddexp(tail, logp[..., k:].logsumexp(dim=-1))
        return index, logp[..., :k], tail
