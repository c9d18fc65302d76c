"""What `foundry eval TARGET` scores: a Foundry checkpoint or a local Hugging Face causal-LM folder.

    lm = load_target("runs/x")                       # run dir or its checkpoint/ (config.yaml inside)
    lm = load_target("/models/gpt2", device="cuda")  # a folder with config.json, loaded from disk only
    lm = FoundryLM(GPT(cfg.model), tokenizer)        # a model in memory (tests, the trainer)

The kind is read from the folder's contents (config.yaml + model.safetensors = Foundry, config.json =
Hugging Face) or given with kind="foundry" | "hf". Hugging Face folders load with
local_files_only=True and trust_remote_code=False: nothing is downloaded, no code from the folder runs.
Both kinds become a LanguageModel (lm.py), so every task runs the same code on either.
"""
from __future__ import annotations

import contextlib
import os

import torch
from torch import nn

from foundry.benchmarks.lm import LanguageModel
from foundry.errors import UserError


def resolve_device(device: str) -> str:
    """'auto' -> cuda if available, else cpu; UserError for an unknown device or one absent here."""
    from foundry.hardware import pick_device
    return str(pick_device(device, "--device"))


class FoundryLM(LanguageModel):
    def __init__(self, model, tokenizer, cfg=None, device: str = "cpu"):
        super().__init__()
        self.device = resolve_device(device)
        self.model = model.to(self.device).eval()
        self.tokenizer, self.cfg = tokenizer, cfg
        self.block_size = model.cfg.block_size
        self.vocab_size = model.cfg.vocab_size

    def encode(self, text: str) -> list[int]:
        return self.tokenizer.encode(text)

    def decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids)

    def _autocast(self):
        if self.cfg is None:
            return contextlib.nullcontext()
        from foundry.hardware import autocast
        return autocast(self.device, self.cfg)

    def forward(self, ids):  # (B, T) -> (B, T, V)
        with self._autocast():
            return self.model(ids)

    def new_cache(self):
        return [{} for _ in self.model.blocks]  # one key/value dict per layer

    def forward_cached(self, ids, cache, start: int):  # (B, t) -> (B, t, V)
        with self._autocast():
            return self.model(ids, cache, start)

    def logits_module(self) -> nn.Module:
        return self.model


class _LogitsOnly(nn.Module):
    """A transformers causal LM whose forward returns the logits tensor, as foundry's GPT does."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, ids):
        return self.model(input_ids=ids).logits


class HuggingFaceLM(LanguageModel):
    def __init__(self, path: str, device: str = "cpu", dtype: str = "auto"):
        super().__init__()
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.device = resolve_device(device)
        if dtype == "auto":
            dtype = "bf16" if self.device.startswith("cuda") else "fp32"
        torch_dtype = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[dtype]
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True, trust_remote_code=False)
            model = AutoModelForCausalLM.from_pretrained(path, local_files_only=True, trust_remote_code=False,
                                                         dtype=torch_dtype)
        except (OSError, ValueError, KeyError) as e:
            raise UserError(f"{path}: cannot load as a Hugging Face causal LM ({str(e).splitlines()[0]})") from None
        self.model = model.to(self.device).eval()
        config = model.config
        self.vocab_size = config.vocab_size
        self.block_size = (getattr(config, "max_position_embeddings", None) or getattr(config, "n_positions", None)
                           or min(self.tokenizer.model_max_length, 2048))
        # tokens the tokenizer puts in front of a text (e.g. BOS), found by encoding with and without them
        with_special = self.tokenizer("a")["input_ids"]
        plain = self.tokenizer("a", add_special_tokens=False)["input_ids"]
        if plain and with_special[-len(plain):] == plain:
            self.prefix_ids = with_special[:len(with_special) - len(plain)]
        eos = self.tokenizer.eos_token_id
        self.stop_ids = {eos} if eos is not None else set()

    def encode(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=True)

    def forward(self, ids):
        return self.model(input_ids=ids).logits

    def new_cache(self):
        return {}

    def forward_cached(self, ids, cache, start: int):
        out = self.model(input_ids=ids, past_key_values=cache.get("past"), use_cache=True)
        cache["past"] = out.past_key_values  # positions continue from the cache's length (= start)
        return out.logits

    def logits_module(self) -> nn.Module:
        return _LogitsOnly(self.model)


def target_kind(path: str) -> str:
    from foundry.weights.checkpoint import checkpoint_dir

    folder = checkpoint_dir(path)
    if os.path.isfile(os.path.join(folder, "config.yaml")) and os.path.isfile(os.path.join(folder, "model.safetensors")):
        return "foundry"
    if os.path.isfile(os.path.join(path, "config.json")):
        return "hf"
    raise UserError(f"{path}: neither a Foundry checkpoint (config.yaml + model.safetensors) nor a "
                    "Hugging Face model folder (config.json)")


def load_target(path: str, device: str = "cpu", kind: str = "auto", dtype: str = "auto") -> LanguageModel:
    if not os.path.isdir(path):
        raise UserError(f"{path}: no such folder (expected a run dir, a checkpoint or a Hugging Face model folder)")
    kind = target_kind(path) if kind == "auto" else kind
    if kind == "foundry":
        from foundry.weights.checkpoint import load_model

        model, tokenizer, cfg = load_model(path, device=resolve_device(device))
        return FoundryLM(model, tokenizer, cfg, device)
    if kind == "hf":
        return HuggingFaceLM(path, device, dtype)
    raise UserError(f"--kind: unknown {kind!r} (valid: auto, foundry, hf)")
