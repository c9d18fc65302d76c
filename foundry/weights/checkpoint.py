"""Checkpoints: weights in safetensors, optimizer and RNG state beside them, config embedded.

    RUN/checkpoint/
        model.safetensors   weights (shared tensors such as tied embeddings handled), pruning
                            masks as NAME.weight_mask (foundry/weights/masks.py)
        ema.safetensors     EMA of the weights, when train.ema > 0
        state.pt            optimizer + torch RNG state (+ the objective's own tensors); weights_only=True
        progress.json       step, tokens, numpy batch-sampler state, best metrics so far
        config.yaml         the resolved config (vocab_size filled in)
        tokenizer.json      the tokenizer, rebuilt with foundry.data.tokenizer_from_json
    A fused model's checkpoint is the same: every tensor (frozen experts too) in model.safetensors,
    the structure in config.yaml's `fusion` section.

    model, tokenizer, cfg = load_model("runs/x")     # a run dir or its checkpoint/ folder
    save_weights(folder, model, cfg, tokenizer)       # weights only (pruned models): what load_model reads
A checkpoint is written into a temporary folder and renamed into place, so a crash
mid-save leaves the previous checkpoint intact. A damaged file (truncated, overwritten, of
another model shape) is a UserError naming it, never a traceback; check_resumable names the
settings in which a config differs from the checkpoint it would resume.
"""
import json
import os
import shutil
import warnings

import torch
from safetensors.torch import save_model as save_safetensors

from foundry import catalog
from foundry.config import flat, parse_file
from foundry.config import save as save_config
from foundry.errors import UserError
from foundry.weights.masks import load_weights as load_with_masks

# settings whose change alters the weights' names or shapes: a checkpoint resumes only with the same
SHAPE_KEYS = ("train.lora_rank",)


def checkpoint_dir(path) -> str:
    path = os.fspath(path)
    inner = os.path.join(path, "checkpoint")
    return inner if os.path.isdir(inner) else path


def save_checkpoint(run_dir, model, optimizer, cfg, tokenizer, progress: dict, ema=None, objective_params=()) -> str:
    final = os.path.join(run_dir, "checkpoint")
    tmp, old = final + ".tmp", final + ".old"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    save_safetensors(model, os.path.join(tmp, "model.safetensors"))
    if ema is not None:
        save_safetensors(ema, os.path.join(tmp, "ema.safetensors"))
    state = {"optimizer": optimizer.state_dict(), "torch_rng": torch.get_rng_state(),
             "objective": [p.detach().cpu() for p in objective_params]}
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


def save_weights(folder, model, cfg, tokenizer) -> None:
    """A checkpoint of weights, config and tokenizer only (no optimizer state) into an existing empty
    `folder`; what load_model and train.init_from read. Callers make it atomic (foundry.io.atomic_folder)."""
    save_safetensors(model, os.path.join(folder, "model.safetensors"))
    save_config(cfg, os.path.join(folder, "config.yaml"))
    with open(os.path.join(folder, "tokenizer.json"), "w", encoding="utf-8") as f:
        f.write(tokenizer.to_json())


def find_checkpoint(run_dir) -> str | None:
    """The newest complete checkpoint folder of a run, or None."""
    for name in ("checkpoint", "checkpoint.old"):
        folder = os.path.join(os.fspath(run_dir), name)
        if os.path.isfile(os.path.join(folder, "progress.json")):
            return folder
    return None


def load_weights(model, path, where: str | None = None) -> None:
    """Load a safetensors file into `model`; UserError (naming `where`, default the file) for a
    damaged file or one of another shape."""
    from safetensors import SafetensorError
    where = where or path
    try:
        load_with_masks(model, path)
    except (SafetensorError, OSError) as e:
        raise UserError(f"{where}: damaged or truncated weights ({str(e).splitlines()[0][:200]})") from None
    except RuntimeError as e:   # torch's load_state_dict: missing, unexpected or mis-shaped tensors
        lines = [ln.strip() for ln in str(e).strip().splitlines() if ln.strip()]
        detail = (lines[1] if len(lines) > 1 else lines[0])[:200]
        raise UserError(f"{where}: does not fit this model ({detail})") from None


def check_resumable(folder, cfg) -> None:
    """UserError naming the model settings in which `cfg` differs from the checkpoint's own config."""
    saved = flat(parse_file(os.path.join(folder, "config.yaml")))
    now = flat(cfg)
    keys = [k for k in now if (k.startswith("model.") or k in SHAPE_KEYS) and saved.get(k) != now[k]]
    if keys:
        changes = ", ".join(f"{k} {saved.get(k)!r} -> {now[k]!r}" for k in keys[:4])
        raise UserError(f"--resume: {folder} was trained with other model settings ({changes}); "
                        "resume with the config it was trained with, or train into another --out")


def load_training_state(folder, model, optimizer, ema=None, objective_params=()) -> dict:
    """Restore weights, optimizer, RNG and the objective's tensors in place; return the progress dict."""
    load_weights(model, os.path.join(folder, "model.safetensors"))
    if ema is not None and os.path.exists(os.path.join(folder, "ema.safetensors")):
        load_weights(ema, os.path.join(folder, "ema.safetensors"))
    state_path = os.path.join(folder, "state.pt")
    try:
        with warnings.catch_warnings():   # a damaged file's pickle-protocol warning: the error below says it
            warnings.simplefilter("ignore")
            state = torch.load(state_path, weights_only=True, map_location="cpu")
        optimizer.load_state_dict(state["optimizer"])
        torch_rng = state["torch_rng"]
        with torch.no_grad():
            for param, saved in zip(objective_params, state.get("objective", [])):
                param.copy_(saved)
    except Exception as e:   # truncated zip, foreign pickle, another optimizer's state: all the same to a user
        raise UserError(f"{state_path}: damaged or from another run ({type(e).__name__}: "
                        f"{str(e).splitlines()[0][:160] if str(e) else ''})") from None
    torch.set_rng_state(torch_rng)
    if "cuda_rng" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda_rng"])
    progress_path = os.path.join(folder, "progress.json")
    try:
        with open(progress_path, encoding="utf-8") as f:
            progress = json.load(f)
        return {key: progress[key] for key in ("step", "tokens", "train_seconds", "first_loss", "rng")}
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise UserError(f"{progress_path}: damaged ({type(e).__name__}: {e})") from None


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
    load_weights(model, weights, f"train.init_from: {where}")


def _load_gpt(cfg, weights, device):
    from foundry.model.shapes import meta_model
    from foundry.weights.lora import apply_lora
    # built without its random init (every weight comes from the file; strict loading checks that)
    model = apply_lora(meta_model(cfg.model), cfg.train).to_empty(device="cpu")
    if cfg.model.tie_embeddings:  # to_empty gives every parameter its own storage: tie them again
        model.lm_head.weight = model.wte.weight
    load_weights(model, weights)   # pruning masks too, where the file has them
    return model.to(device)


def _load_fused(cfg, weights, device):
    from foundry.fusion.build import load_fused
    return load_fused(cfg, weights, device)  # experts placed per device, tensors read one at a time


# cfg.model_kind -> (cfg, weights file, device) -> the model, its weights loaded
MODEL_KINDS = {"gpt": _load_gpt, "fusion": _load_fused}


def load_model(path, device="cpu", use_ema=True):
    """(model, tokenizer, cfg) from a run dir or checkpoint folder, in eval mode; the model is the
    kind its config describes (MODEL_KINDS: a GPT, or a fused model)."""
    from foundry.data import tokenizer_from_json

    folder = checkpoint_dir(path)
    needed = ("config.yaml", "model.safetensors", "tokenizer.json")
    missing = [n for n in needed if not os.path.exists(os.path.join(folder, n))]
    if missing:
        raise UserError(f"{path}: not a Foundry checkpoint (missing {', '.join(missing)})")
    cfg = catalog.load(os.path.join(folder, "config.yaml"))
    tokenizer_path = os.path.join(folder, "tokenizer.json")
    try:
        with open(tokenizer_path, encoding="utf-8") as f:
            tokenizer = tokenizer_from_json(f.read())
    except Exception as e:   # not JSON, not UTF-8, an unknown kind: a damaged file
        raise UserError(f"{tokenizer_path}: damaged ({type(e).__name__}: {str(e)[:160]})") from None
    weights = os.path.join(folder, "ema.safetensors")
    if not (use_ema and os.path.exists(weights)):
        weights = os.path.join(folder, "model.safetensors")
    return MODEL_KINDS[cfg.model_kind](cfg, weights, device).eval(), tokenizer, cfg
