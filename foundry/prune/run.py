"""Prune a trained run into a new run folder (what `foundry prune` and the Python API call), or the
starting weights of a training run (`train.prune`, what the trainer calls).

    report = prune_run("runs/base", "runs/base-wanda", method="wanda", sparsity=0.5, calibration=16)
    report = prune_run("runs/base", "runs/base-24", method="magnitude", pattern="2:4")
    report = prune_run("runs/base", "runs/base-heads", structured="heads", sparsity=0.25)
    report = prune_for_training(model, cfg, dataset.train)    # masks train.init_from's weights in place

The output folder is a Foundry checkpoint (OUT/checkpoint/: model.safetensors with the masks as
NAME.weight_mask, config.yaml, tokenizer.json) plus OUT/config.yaml and OUT/prune.json (the report:
method, sparsity per layer, sizes, val loss before and after). Fine-tune it with
`train.init_from: OUT`: the trainer re-applies the masks after every optimizer step. A LoRA run is
merged first. Calibration sequences come from the run's own training split (its data.* settings).
"""
from __future__ import annotations

import copy
import dataclasses
import os
import time

from foundry.config import PruneConfig, save
from foundry.errors import UserError
from foundry.io import atomic_folder, write_json
from foundry.prune.scores import PRUNE_METHODS
from foundry.prune.structured import prune_structured
from foundry.prune.unstructured import calibration_batch, prune_unstructured


def prune_for_training(model, cfg, train_tokens) -> dict:
    """train.prune: mask the model (train.init_from's weights, before LoRA) with calibration
    sequences drawn from the training split with seed train.seed + 1."""
    p = cfg.train.prune
    device = next(model.parameters()).device
    x, y = calibration_batch(train_tokens, p.calibration, cfg.model.block_size, cfg.train.seed + 1)
    return prune_unstructured(model, p.method, p.sparsity, p.pattern, p.scope, x.to(device), y.to(device))


def _label(method, sparsity, pattern, structured) -> str:
    if structured:
        return f"{structured}_{sparsity:g}"
    return f"{method}_{pattern}" if pattern else f"{method}_{sparsity:g}"


def prune_run(run, out, method: str = "", sparsity: float = 0.5, pattern: str = "", scope: str = "",
              calibration: int = 16, structured: str = "", seed: int = 0, device: str = "cpu",
              evaluate: bool = True, log=print) -> dict:
    """Prune the run folder or checkpoint `run` into the new folder `out`; returns the report."""
    from foundry.data import load_dataset
    from foundry.evaluation import val_metrics, val_slice
    from foundry.weights.checkpoint import load_model, save_weights
    from foundry.weights.lora import merge_lora

    if bool(method) == bool(structured):
        raise UserError("prune: give --method (unstructured, N:M) or --structured (heads, neurons, layers), one of them")
    if method and method not in PRUNE_METHODS:
        raise UserError(f"--method: unknown {method!r} (valid: {', '.join(PRUNE_METHODS)})")
    if calibration <= 0:
        raise UserError(f"--calibration: must be positive, got {calibration}")
    if os.path.exists(out):
        raise UserError(f"{out}: already exists; choose another --out")
    start = time.perf_counter()
    model, tokenizer, cfg = load_model(run, device)
    model = merge_lora(model)
    needs_data = evaluate or structured or PRUNE_METHODS[method].needs
    data = load_dataset(cfg.data) if needs_data else None
    if data is not None and data.tokenizer.to_json() != tokenizer.to_json():
        raise UserError(f"{run}: the checkpoint's tokenizer differs from the one data.* builds from {cfg.data.source}")
    x = y = None
    if data is not None:
        x, y = (t.to(device) for t in calibration_batch(data.train, calibration, cfg.model.block_size, seed))

    def metrics(m, c):   # the trainer's slice: the first eval.bytes bytes of the validation text
        if not evaluate:
            return {}
        tokens, per_token = val_slice(data.val, data.tokenizer.decode, c.eval.bytes)
        return val_metrics(m, tokens, c, per_token, device)
    before = metrics(model, cfg)
    label = _label(method, sparsity, pattern, structured)
    log(f"pruning {run} ({model.num_params():,} params): {label}")
    new_cfg = copy.deepcopy(cfg)
    if structured:
        model, small_model_cfg, report = prune_structured(model, structured, sparsity, x, scope or "layer")
        new_cfg.model = small_model_cfg
    else:
        report = prune_unstructured(model, method, sparsity, pattern, scope, x, y)
    new_cfg.train = dataclasses.replace(new_cfg.train, lora_rank=0, init_from="", prune=PruneConfig())
    new_cfg.parent, new_cfg.name = cfg.name, f"{cfg.name}-{label}"
    after = metrics(model, new_cfg)
    report.update({"source": os.path.abspath(os.fspath(run)), "calibration": calibration if x is not None else 0,
                   "seed": seed, "params": model.num_params(), "before": before, "after": after,
                   "seconds": round(time.perf_counter() - start, 3)})
    with atomic_folder(out) as tmp:
        os.makedirs(os.path.join(tmp, "checkpoint"))
        save_weights(os.path.join(tmp, "checkpoint"), model, new_cfg, tokenizer)
        save(new_cfg, os.path.join(tmp, "config.yaml"))
        write_json(os.path.join(tmp, "prune.json"), report)
    report["out"] = os.path.abspath(os.fspath(out))
    return report
