"""Weight names and shapes of the GPT a model config builds, without allocating any weight.

    weight_shapes(cfg.model)     # {"wte.weight": (vocab, C), ...}, the state_dict's names in order
    meta_model(cfg.model)        # the GPT on the meta device: num_params(), flops_per_token()

The GPT is built on the meta device with its random normal init skipped: meta tensors hold no
values, and torch's meta normal_ would first import its reference decompositions (seconds, once a
process). The skip is a torch-function mode, so it holds for this thread's calls only. Used by
the zoo (planning an import, presets), the mutation engine (does a child still fit the weights?)
and checkpoint.load_model (every weight comes from the file anyway).
"""
from __future__ import annotations

import dataclasses

import torch
from torch.overrides import TorchFunctionMode

from foundry.model.gpt import GPT


class _SkipNormalInit(TorchFunctionMode):
    def __torch_function__(self, func, types, args=(), kwargs=None):
        if func is torch.nn.init.normal_:
            return args[0] if args else kwargs["tensor"]
        return func(*args, **(kwargs or {}))


def meta_model(model_cfg) -> GPT:
    """The GPT on the meta device; vocab_size 0 counts as 1."""
    model_cfg = dataclasses.replace(model_cfg, vocab_size=max(1, model_cfg.vocab_size))
    with torch.device("meta"), _SkipNormalInit():
        return GPT(model_cfg)


def weight_shapes(model_cfg) -> dict:
    return {name: tuple(t.shape) for name, t in meta_model(model_cfg).state_dict().items()}
