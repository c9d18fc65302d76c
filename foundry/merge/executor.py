"""Run a recipe: open the models, plan, merge one output tensor at a time, write the output folder.

    summary = merge("merge.yaml", "runs/merged")              # or a dict / Recipe
    summary = merge(recipe, "out", dry_run=True)              # checks and plans; writes nothing

Streaming: each output tensor's inputs are read when it is merged (one tensor per input model),
merged (the task-vector methods chunk by chunk, streaming.py), cast and written at its planned
offset in the output file, then dropped: peak memory is about the largest tensor times (inputs + 1)
plus chunk-sized buffers, never a model. The output takes the
base model's format (the first model's without a base): a Foundry checkpoint
(OUT/checkpoint/{model.safetensors, config.yaml, tokenizer.json} and OUT/config.yaml) or a Hugging
Face folder (config.json, sharded safetensors with their index, the tokenizer files). Either way
OUT/merge.yaml is the recipe and OUT/merge.json the lineage: the inputs' sha256, the method, the
seed, what was merged, seconds and peak memory. The folder is filled under a temporary name and
renamed when complete, so a failure leaves nothing.
"""
from __future__ import annotations

import copy
import os
import threading
import time

import torch
import yaml

from foundry.errors import UserError
from foundry.io import atomic_folder, write_json
from foundry.merge.method import TensorJob
from foundry.merge.plan import make_plan
from foundry.merge.recipe import Recipe, load, parse
from foundry.merge.sources import open_model
from foundry.merge.views import in_layout_of
from foundry.merge.vocab import align_vocabularies

DEFAULT_SHARD_BYTES = 5 * 2**30


class MemoryWatch:
    """Peak resident and private (anonymous) memory of this process, sampled every few ms by a
    thread (Linux /proc/self/status); resident memory also counts the mapped pages of input files."""

    def __init__(self, interval: float = 0.002):
        self.interval, self.peak_rss, self.peak_private = interval, 0, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def sample(self):
        try:
            with open("/proc/self/status") as f:
                fields = dict(line.split(":", 1) for line in f if line.startswith(("VmRSS", "RssAnon")))
        except OSError:
            return
        self.peak_rss = max(self.peak_rss, int(fields.get("VmRSS", "0 kB").split()[0]) * 1024)
        self.peak_private = max(self.peak_private, int(fields.get("RssAnon", "0 kB").split()[0]) * 1024)

    def _run(self):
        while not self._stop.wait(self.interval):
            self.sample()

    def __enter__(self):
        self.sample()
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.sample()
        return False


def merge_tensor(tensor_plan, method, seed: int, device="cpu", alignment=None) -> torch.Tensor:
    """One output tensor: read its inputs, merge, cast to the output dtype (on the CPU)."""
    inputs = [model.get(name) for model, name in tensor_plan.inputs]
    if not all(t.is_floating_point() for t in inputs):     # integer buffers are copied, never blended
        if any(t.dtype != inputs[0].dtype or not torch.equal(t, inputs[0]) for t in inputs[1:]):
            raise UserError(f"{tensor_plan.name}: a non-float tensor differs between the models; it cannot be merged")
        return inputs[0]
    if alignment is not None and tensor_plan.name in alignment.names:
        inputs = alignment.align(tensor_plan.name, [(m, t) for (m, _), t in zip(tensor_plan.inputs, inputs)])
    if tensor_plan.input_dtype is not None:
        inputs = [t.to(tensor_plan.input_dtype) for t in inputs]
    inputs = [t.to(device) for t in inputs]
    base = inputs[0] if tensor_plan.has_base else None
    others = inputs[1:] if tensor_plan.has_base else inputs
    out = method.run(TensorJob(tensor_plan.name, base, others, tensor_plan.shared, tensor_plan.per_model, seed))
    return out.to(dtype=tensor_plan.dtype, device="cpu")


def prepare(recipe, seed: int | None = None):
    """(recipe, models, plan) for a recipe path, mapping or Recipe; plan.tokenizer, .tokenizer_model
    and .alignment say which tokenizer the output gets (foundry.merge.vocab)."""
    if isinstance(recipe, (str, os.PathLike)):
        recipe = load(recipe)
    elif isinstance(recipe, dict):
        recipe = parse(recipe)
    elif not isinstance(recipe, Recipe):
        raise UserError(f"recipe: expected a file, a mapping or a Recipe, got {type(recipe).__name__}")
    recipe = copy.deepcopy(recipe)
    if seed is not None:
        recipe.seed = seed
    models = {ref: open_model(ref) for ref in recipe.referenced_models()}
    named = recipe.tokenizer_source not in (None, "base", "union")
    tokenizer_model = (models.get(recipe.tokenizer_source) or open_model(recipe.tokenizer_source)) if named else None
    base_ref = recipe.base_model or (recipe.models or recipe.slices[0].sources)[0].model
    models = {ref: in_layout_of(model, models[base_ref]) for ref, model in models.items()}
    if tokenizer_model is not None:
        tokenizer_model = in_layout_of(tokenizer_model, models[base_ref])
    tokenizer, tokenizer_model, alignment = align_vocabularies(recipe, models, models[base_ref], tokenizer_model)
    plan = make_plan(recipe, models, alignment)
    plan.tokenizer, plan.tokenizer_model, plan.alignment = tokenizer, tokenizer_model, alignment
    return recipe, models, plan


def merge(recipe, out_dir, *, seed: int | None = None, device: str = "cpu", dry_run: bool = False,
          max_shard_bytes: int = DEFAULT_SHARD_BYTES, progress=None) -> dict:
    """Merge a recipe into `out_dir` (a new folder); returns the summary (also in OUT/merge.json).

    progress(done, total, name) is called after each tensor."""
    start = time.perf_counter()
    recipe, models, plan = prepare(recipe, seed)
    method = recipe.method
    summary = {"method": method.name, "out": os.path.abspath(out_dir), "format": plan.base.kind,
               "tensors": len(plan.tensors), "params": sum(torch.Size(t.shape).numel() for t in plan.tensors),
               "n_layer": plan.n_layer, "seed": recipe.seed, "device": str(device),
               "models": [m.ref for ref, m in models.items()], "warnings": list(recipe.warnings)}
    if dry_run:
        summary["plan"] = [{"name": t.name, "inputs": [f"{m.ref}:{n}" for m, n in t.inputs], "dtype": str(t.dtype),
                            "shared": t.shared, "per_model": t.per_model} for t in plan.tensors]
        return summary
    if os.path.exists(out_dir):
        raise UserError(f"{out_dir}: already exists; choose another output folder")
    hash_start = time.perf_counter()
    inputs = [{"model": m.ref, "path": m.path, "kind": m.kind, "sha256": m.fingerprint()} for m in models.values()]
    hash_seconds = time.perf_counter() - hash_start
    from foundry.merge import output
    with MemoryWatch() as memory, atomic_folder(out_dir) as tmp:
        merge_start = time.perf_counter()

        def tensors():
            for i, tensor_plan in enumerate(plan.tensors):
                yield tensor_plan.name, merge_tensor(tensor_plan, method, recipe.seed, device, plan.alignment)
                if progress:
                    progress(i + 1, len(plan.tensors), tensor_plan.name)
        files = output.write(tmp, plan, tensors(), max_shard_bytes, os.path.basename(os.path.normpath(out_dir)))
        merge_seconds = time.perf_counter() - merge_start
        memory.sample()
        summary.update({"files": files, "seconds": round(time.perf_counter() - start, 3),
                        "merge_seconds": round(merge_seconds, 3), "hash_seconds": round(hash_seconds, 3),
                        "peak_rss_mb": round(memory.peak_rss / 2**20, 1),
                        "peak_private_mb": round(memory.peak_private / 2**20, 1),
                        "largest_tensor_mb": round(max(torch.Size(t.shape).numel() * t.dtype.itemsize
                                                       for t in plan.tensors) / 2**20, 1)})
        with open(os.path.join(tmp, "merge.yaml"), "w", encoding="utf-8") as f:
            yaml.safe_dump({**recipe.data, "seed": recipe.seed}, f, sort_keys=False)
        write_json(os.path.join(tmp, "merge.json"), {**summary, "recipe": {**recipe.data, "seed": recipe.seed},
                                                     "inputs": inputs, "foundry": _version(), "torch": torch.__version__})
    return summary


def _version() -> str:
    from foundry import __version__
    return __version__


__all__ = ["DEFAULT_SHARD_BYTES", "MemoryWatch", "merge", "merge_tensor", "prepare"]
