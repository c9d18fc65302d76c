"""A LoRA run's adapters as a peft adapter folder on the Hugging Face names of its family.

    write_adapter("out/adapter", family, cfg, reader, base="out/base")
    # adapter_config.json + adapter_model.safetensors; peft loads it onto the exported base:
    # PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained("out/base"), "out/adapter")

The update B @ A of a Foundry projection maps exactly onto the Hugging Face modules of its rule:
a fused Foundry projection (kv_proj = [k; v]) gives each HF module the shared A and its rows of
B; several Foundry projections fused into one HF module (GPT-2's c_attn = q_proj + kv_proj) give
it the stacked A's and the block-diagonal B's, so that module's rank is the sum (rank_pattern and
alpha_pattern keep alpha / r, the scale, the same).
"""
from __future__ import annotations

import json
import os

import torch

from foundry.errors import UserError
from foundry.weights.lora import ADAPTER
from foundry.weights.tensors import write_sharded

PREFIX = "base_model.model."


def write_adapter(folder: str, family, cfg, reader, base: str = "") -> dict:
    train, m = cfg.train, cfg.model
    if train.lora_rank <= 0:
        raise UserError("--lora adapter: the run has no LoRA adapters (train.lora_rank is 0); export it merged")
    names = set(reader.names())
    tensors, rank_pattern, alpha_pattern, targets = {}, {}, {}, set()
    for rule, hf, foundry in family.rules(m.n_layer, m.tie_embeddings):
        modules = [n.rsplit(".", 1)[0] for n in foundry if n.endswith(".weight")]
        adapted = [mod for mod in modules if f"{mod}.lora_A.{ADAPTER}.weight" in names]
        if not adapted:
            continue  # norms, embeddings, biases, the head
        if len(adapted) != len(modules):
            raise UserError(f"{modules}: only some of these carry LoRA adapters; {hf[0]} cannot be expressed")
        a = [reader.get(f"{mod}.lora_A.{ADAPTER}.weight") for mod in modules]  # (r, in) each
        b = [reader.get(f"{mod}.lora_B.{ADAPTER}.weight") for mod in modules]  # (out, r) each
        hf_modules = [n.rsplit(".", 1)[0] for n in hf]
        if len(modules) == 1:
            pairs = [(a[0], part.contiguous()) for part in torch.chunk(b[0], len(hf_modules), dim=0)]
        else:
            (leaf,) = {mod.rsplit(".", 1)[-1] for mod in hf_modules}
            rank_pattern[leaf], alpha_pattern[leaf] = train.lora_rank * len(modules), train.lora_alpha * len(modules)
            pairs = [(torch.cat(a, dim=0), torch.block_diag(*b))]
        for module, (lora_a, lora_b) in zip(hf_modules, pairs):
            tensors[f"{PREFIX}{module}.lora_A.weight"] = lora_a
            tensors[f"{PREFIX}{module}.lora_B.weight"] = lora_b
            targets.add(module.rsplit(".", 1)[-1])
    config = {"peft_type": "LORA", "task_type": "CAUSAL_LM", "base_model_name_or_path": base,
              "r": train.lora_rank, "lora_alpha": train.lora_alpha, "lora_dropout": train.lora_dropout,
              "target_modules": sorted(targets), "bias": "none", "rank_pattern": rank_pattern,
              "alpha_pattern": alpha_pattern, "inference_mode": True,
              "fan_in_fan_out": any(rule.transpose for rule in family.weights), "modules_to_save": None}
    specs = [(n, t.dtype, tuple(t.shape)) for n, t in tensors.items()]
    write_sharded(folder, specs, tensors.items(), max_shard_bytes=1 << 62, prefix="adapter_model")
    with open(os.path.join(folder, "adapter_config.json"), "w", encoding="utf-8") as f:
        json.dump(config, f, indent=2)
    return {"adapter_tensors": len(tensors), "target_modules": sorted(targets)}
