"""Weight files read and written one tensor at a time: what lets the zoo (and merging) handle
models larger than memory. Peak memory is the tensors in hand, not the model.

    reader = TensorReader.from_folder("hf/llama")       # model.safetensors, or sharded with
    reader.names(); reader.spec(name)                   #   model.safetensors.index.json
    for name, tensor in reader.tensors(): ...           # file by file, one tensor at a time
    reader.get(name)                                    # random access

    with TensorWriter(path, [(name, dtype, shape), ...]) as out:   # offsets fixed up front,
        out.write(name, tensor)                                     # tensors in any order
    write_sharded(folder, specs, tensors, max_shard_bytes)          # HF shards + index.json

Only safetensors are read by default. `allow_pickle=True` also reads pytorch_model.bin files, with
torch.load(weights_only=True, mmap=True): tensors only, never arbitrary objects. A writer's file
is complete only once every tensor named in its specs was written; close() checks it.
"""
from __future__ import annotations

import json
import math
import os
import struct

import torch

from foundry.errors import UserError

DTYPES = {torch.float64: "F64", torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16",
          torch.int64: "I64", torch.int32: "I32", torch.int16: "I16", torch.int8: "I8", torch.uint8: "U8",
          torch.bool: "BOOL"}
DTYPE_NAMES = {name: dtype for dtype, name in DTYPES.items()}
SAFETENSORS_INDEX, PICKLE_INDEX = "model.safetensors.index.json", "pytorch_model.bin.index.json"


def read_header(path: str) -> dict:
    """A safetensors file's header: {name: {"dtype", "shape", "data_offsets"}, "__metadata__": ...}."""
    try:
        with open(path, "rb") as f:
            (size,) = struct.unpack("<Q", f.read(8))
            return json.loads(f.read(size))
    except (OSError, struct.error, ValueError) as e:
        raise UserError(f"{path}: not a readable safetensors file ({e})") from None


class TensorReader:
    """Tensors spread over files; `files` maps file path -> names in it (in file order)."""

    def __init__(self, files: dict[str, list[str]], specs: dict[str, tuple], pickled: bool = False):
        self.files, self._specs, self.pickled = files, specs, pickled
        self._where = {name: path for path, names in files.items() for name in names}
        self._open = {}

    @classmethod
    def from_folder(cls, folder: str, allow_pickle: bool = False, prefix: str = "model") -> "TensorReader":
        """The weights of a Hugging Face folder: PREFIX.safetensors, its sharded index, or (only with
        allow_pickle) pytorch_model.bin and its index."""
        index = os.path.join(folder, SAFETENSORS_INDEX if prefix == "model" else f"{prefix}.safetensors.index.json")
        single = os.path.join(folder, f"{prefix}.safetensors")
        if os.path.isfile(index) or os.path.isfile(single):
            paths = _index_files(folder, index) if os.path.isfile(index) else [single]
            files, specs = {}, {}
            for path in paths:
                header = read_header(path)
                header.pop("__metadata__", None)
                names = sorted(header, key=lambda n: header[n]["data_offsets"][0])
                files[path] = names
                specs.update({n: (DTYPE_NAMES.get(header[n]["dtype"]), tuple(header[n]["shape"])) for n in names})
            return cls(files, specs)
        pickled = [p for p in (os.path.join(folder, PICKLE_INDEX), os.path.join(folder, "pytorch_model.bin"))
                   if os.path.isfile(p)]
        if pickled and not allow_pickle:
            raise UserError(f"{folder}: holds only pickled weights ({os.path.basename(pickled[0])}); pass "
                            "--allow-pickle to read them (loaded with weights_only=True), or convert to safetensors")
        if not pickled:
            raise UserError(f"{folder}: no {prefix}.safetensors, {SAFETENSORS_INDEX} or pytorch_model.bin")
        paths = _index_files(folder, pickled[0]) if pickled[0].endswith(".json") else pickled
        files, specs = {}, {}
        for path in paths:
            state = _load_pickle(path)
            files[path] = list(state)
            specs.update({n: (t.dtype, tuple(t.shape)) for n, t in state.items()})
        return cls(files, specs, pickled=True)

    def names(self) -> list[str]:
        return list(self._where)

    def spec(self, name: str) -> tuple:
        """(torch dtype, shape) without reading the data."""
        return self._specs[name]

    def nbytes(self, name: str) -> int:
        dtype, shape = self._specs[name]
        return math.prod(shape) * dtype.itemsize

    def _handle(self, path: str):
        if path not in self._open:
            if self.pickled:
                self._open = {path: _load_pickle(path)}  # one pickled shard mapped at a time
            else:
                from safetensors import safe_open
                self._open[path] = safe_open(path, framework="pt")
        return self._open[path]

    def get(self, name: str) -> torch.Tensor:
        handle = self._handle(self._where[name])
        return handle[name] if self.pickled else handle.get_tensor(name)

    def tensors(self):
        """(name, tensor) for every tensor, file by file in storage order; each file closed after."""
        for path, names in self.files.items():
            for name in names:
                yield name, self.get(name)
            self._open.pop(path, None)


def _index_files(folder: str, index: str) -> list[str]:
    try:
        with open(index, encoding="utf-8") as f:
            weight_map = json.load(f)["weight_map"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise UserError(f"{index}: not a weight index with a 'weight_map' ({e})") from None
    paths = []
    for file in weight_map.values():
        path = os.path.join(folder, file)
        if path not in paths:
            if not os.path.isfile(path):
                raise UserError(f"{index}: names {file}, which is not in {folder}")
            paths.append(path)
    return paths


def _load_pickle(path: str) -> dict:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as e:  # weights_only refuses anything but tensors and plain containers
        raise UserError(f"{path}: cannot be read as tensors only ({str(e).splitlines()[0]})") from None
    if not isinstance(state, dict) or not all(isinstance(t, torch.Tensor) for t in state.values()):
        raise UserError(f"{path}: not a state dict of tensors")
    return state


class TensorWriter:
    """A safetensors file whose layout is fixed by `specs` [(name, dtype, shape)] before any data:
    each write() puts one tensor at its offset, in any order, so nothing needs holding."""

    def __init__(self, path: str, specs: list[tuple], metadata: dict | None = None):
        header, offset = {}, 0
        for name, dtype, shape in specs:
            size = math.prod(shape) * dtype.itemsize
            header[name] = {"dtype": DTYPES[dtype], "shape": list(shape), "data_offsets": [offset, offset + size]}
            offset += size
        if metadata:
            header["__metadata__"] = metadata
        raw = json.dumps(header, separators=(",", ":")).encode()
        raw += b" " * (-len(raw) % 8)  # the data starts 8-byte aligned
        self.path, self.specs = path, {n: (d, tuple(s)) for n, d, s in specs}
        self.pending = set(self.specs)
        self.start, self.header = 8 + len(raw), header
        self.file = open(path, "wb")
        self.file.write(struct.pack("<Q", len(raw)) + raw)
        self.file.truncate(self.start + offset)

    def write(self, name: str, tensor: torch.Tensor) -> None:
        dtype, shape = self.specs[name]
        if tensor.dtype != dtype or tuple(tensor.shape) != shape:
            raise ValueError(f"{self.path}: {name} is {tensor.dtype} {tuple(tensor.shape)}, planned {dtype} {shape}")
        self.file.seek(self.start + self.header[name]["data_offsets"][0])
        self.file.write(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().data)
        self.pending.discard(name)

    def close(self) -> None:
        self.file.close()
        if self.pending:
            raise ValueError(f"{self.path}: {len(self.pending)} planned tensors never written, e.g. {min(self.pending)}")

    def __enter__(self):
        return self

    def __exit__(self, kind, error, traceback):
        if error is None:
            self.close()
        else:
            self.file.close()
        return False


def plan_shards(specs: list[tuple], max_shard_bytes: int) -> list[list[tuple]]:
    """Specs split in order into shards of at most max_shard_bytes (a larger tensor gets its own)."""
    shards, size = [[]], 0
    for spec in specs:
        nbytes = math.prod(spec[2]) * spec[1].itemsize
        if shards[-1] and size + nbytes > max_shard_bytes:
            shards.append([])
            size = 0
        shards[-1].append(spec)
        size += nbytes
    return shards


def write_sharded(folder: str, specs: list[tuple], tensors, max_shard_bytes: int, prefix: str = "model",
                  metadata: dict | None = None) -> list[str]:
    """Write (name, tensor) pairs from `tensors` into PREFIX.safetensors, or into
    PREFIX-0000i-of-0000n.safetensors and PREFIX.safetensors.index.json when they exceed
    max_shard_bytes (transformers' layout). Returns the files written."""
    shards = plan_shards(specs, max_shard_bytes)
    n = len(shards)
    names = [f"{prefix}.safetensors"] if n == 1 else [f"{prefix}-{i + 1:05d}-of-{n:05d}.safetensors" for i in range(n)]
    writers, where = [], {}
    try:
        for file, shard in zip(names, shards):
            writers.append(TensorWriter(os.path.join(folder, file), shard, metadata or {"format": "pt"}))
            where.update({spec[0]: len(writers) - 1 for spec in shard})
        for name, tensor in tensors:
            writers[where[name]].write(name, tensor)
    finally:
        for writer in writers:
            writer.file.close()
    for writer in writers:
        writer.close()
    if n > 1:
        total = sum(math.prod(s[2]) * s[1].itemsize for s in specs)
        index = {"metadata": {"total_size": total}, "weight_map": {s[0]: names[where[s[0]]] for s in specs}}
        with open(os.path.join(folder, f"{prefix}.safetensors.index.json"), "w", encoding="utf-8") as f:
            json.dump(index, f, indent=2)
    return names
