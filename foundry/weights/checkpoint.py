"""Checkpoints: weights in safetensors, optimizer and RNG state beside them, config embedded.

    RUN/checkpoint/
        model.safetensors   weights (shared tensors such as tied embeddings handled)
        ema.safetensors     EMA of the weights, when train.ema > 0
        state.pt            optimizer + torch RNG state; loaded with weights_only=True
        progress.json       step, tokens, numpy batch-sampler state, best metrics so far
        config.yaml         the resolved config (vocab_size filled in)
        tokenizer.json      the tokenizer, rebuilt with foundry.data.tokenizer_from_json

    model, tokenizer, cfg = load_model("runs/x")     # a run dir or its checkpoint/ folder
A checkpoint is written into a temporary folder and renamed into place, so a crash
mid-save leaves the previous checkpoint intact.
"""
import json
import os
import shutil

import torch
from safetensors.torch import load_model as load_safetensors
from safetensors.torch import save_model as save_safetensors

from foundry import catalog
from foundry.config import save as save_config
from foundry.errors import UserError


def checkpoint_dir(path) -> str:
    path = os.fspath(path)
    inner = os.path.join(path, "checkpoint")
    return inner if os.path.isdir(inner) else path


def save_checkpoint(run_dir, model, optimizer, cfg, tokenizer, progress: dict, ema=None) -> str:
    final = os.path.join(run_dir, "checkpoint")
    tmp, old = final + ".tmp", final + ".old"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    save_safetensors(model, os.path.join(tmp, "model.safetensors"))
    if ema is not None:
        save_safetensors(ema, os.path.join(tmp, "ema.safetensors"))
    state = {"optimizer": optimizer.state_dict(), "torch_rng": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda_rng"] = torch.cuda.get_rng_state_all()
    torch.save(state, os.path.join(tmp, "state.pt"))
    with open(os.path.join(tmp, "progress.json"), "w") as f:
        json.dump(progress, f)
    save_config(cfg, os.path.join(tmp, "config.yaml"))
    with open(os.path.join(tmp, "tokenizer.json"), "w", encoding="utf-8") as f:
        f.write(tokenizer.to_json())
    # Swap in: final -> old, tmp -> final, drop old. A crash between the renames leaves
    # `old` (or `tmp`) complete; load_progress falls back to it.
    if os.path.isdir(final):
        shutil.rmtree(old, ignore_errors=True)
        os.replace(final, old)
    os.replace(tmp, final)
    shutil.rmtree(old, ignore_errors=True)
    return final


def find_checkpoint(run_dir) -> str | None:
    """The newest complete checkpoint folder of a run, or None."""
    for name in ("checkpoint", "checkpoint.old"):
        folder = os.path.join(os.fspath(run_dir), name)
        if os.path.isfile(os.path.join(folder, "progress.json")):
            return folder
    return None


def load_training_state(folder, model, optimizer, ema=None) -> dict:
    """Restore weights, optimizer and RNG in place; return the progress dict."""
    load_safetensors(model, os.path.join(folder, "model.safetensors"))
    if ema is not None and os.path.exists(os.path.join(folder, "ema.safetensors")):
        load_safetensors(ema, os.path.join(folder, "ema.safetensors"))
    state = torch.load(os.path.join(folder, "state.pt"), weights_only=True, map_location="cpu")
    optimizer.load_state_dict(state["optimizer"])
    torch.set_rng_state(state["torch_rng"])
    if "cuda_rng" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda_rng"])
    with open(os.path.join(folder, "progress.json")) as f:
        return json.load(f)


def find_start_weights(path):
    """(weights file, tokenizer) of the checkpoint that train.init_from names."""
    from foundry.data import tokenizer_from_json
    folder = checkpoint_dir(os.path.expandvars(path))
    weights = os.path.join(folder, "ema.safetensors")
    if not os.path.exists(weights):
        weights = os.path.join(folder, "model.safetensors")
    tokenizer_file = os.path.join(folder, "tokenizer.json")
    if not (os.path.exists(weights) and os.path.exists(tokenizer_file)):
        raise UserError(f"train.init_from: {path} is not a Foundry checkpoint")
    with open(tokenizer_file, encoding="utf-8") as f:
        return weights, tokenizer_from_json(f.read())


def load_start_weights(model, weights, where) -> None:
    try:
        load_safetensors(model, weights)
    except RuntimeError as e:
        first = str(e).strip().splitlines()
        raise UserError(f"train.init_from: {where} does not fit model.* ({first[1].strip() if len(first) > 1 else first[0]})") from None


def load_model(path, device="cpu", use_ema=True):
    """(model, tokenizer, cfg) from a run dir or checkpoint folder, in eval mode."""
    from foundry.data import tokenizer_from_json
    from foundry.model.shapes import meta_model
    from foundry.weights.lora import apply_lora

    folder = checkpoint_dir(path)
    needed = ("config.yaml", "model.safetensors", "tokenizer.json")
    missing = [n for n in needed if not os.path.exists(os.path.join(folder, n))]
    if missing:
        raise UserError(f"{path}: not a Foundry checkpoint (missing {', '.join(missing)})")
    cfg = catalog.load(os.path.join(folder, "config.yaml"))
    with open(os.path.join(folder, "tokenizer.json"), encoding="utf-8") as f:
        tokenizer = tokenizer_from_json(f.read())
    # built without its random init (every weight comes from the file; strict loading checks that)
    model = apply_lora(meta_model(cfg.model), cfg.train).to_empty(device="cpu")
    if cfg.model.tie_embeddings:  # to_empty gives every parameter its own storage: tie them again
        model.lm_head.weight = model.wte.weight
    weights = os.path.join(folder, "ema.safetensors")
    if not (use_ema and os.path.exists(weights)):
        weights = os.path.join(folder, "model.safetensors")
    load_safetensors(model, weights)
    return model.to(device).eval(), tokenizer, cfg
