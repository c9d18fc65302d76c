"""Weight names and shapes of the GPT a model config builds, without allocating any weight.

    weight_shapes(cfg.model)     # {"wte.weight": (vocab, C), ...}, the state_dict's names in order

The GPT is built on the meta device with its random init skipped: meta tensors hold no values, and
torch's meta normal_ would first import its reference decompositions (seconds, once a process).
Used by the zoo (planning an import) and the mutation engine (does a child still fit the weights?).
"""
from __future__ import annotations

import dataclasses
from unittest import mock

import torch

from foundry.model.gpt import GPT


def _keep(tensor, *args, **kwargs):
    return tensor


def meta_model(model_cfg) -> GPT:
    """The GPT on the meta device (parameter counts, FLOPs); vocab_size 0 counts as 1."""
    model_cfg = dataclasses.replace(model_cfg, vocab_size=max(1, model_cfg.vocab_size))
    with torch.device("meta"), mock.patch.object(torch.nn.init, "normal_", _keep):
        return GPT(model_cfg)


def weight_shapes(model_cfg) -> dict:
    return {name: tuple(t.shape) for name, t in meta_model(model_cfg).state_dict().items()}
