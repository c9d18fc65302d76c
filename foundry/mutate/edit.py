"""The one way a mutation builds its result: copy the config, set dotted keys, re-validate.

    new = with_values(cfg, {"model.attention": "gqa", "model.n_kv_head": 1})

The input is never touched (the dict round-trip is a deep copy); the result goes through
foundry.config.from_dict, so a component's `check` rejects impossible combinations with a reason.
A mutation that has nothing sensible to do raises NotApplicable with that reason.
fixed_weights_reason(parent, child) says why a child of a fine-tuning config (train.init_from)
cannot start from the same checkpoint: its weights fix the model's shape, components and tokenizer.
"""
from __future__ import annotations

from foundry.catalog import from_dict
from foundry.config import Config, diff, to_dict
from foundry.errors import UserError

# model keys a mutation of a fine-tuning config may change: the starting weights keep their meaning
FINE_TUNING_MODEL_KEYS = ("model.dropout", "model.block_size", "model.gradient_checkpointing")


class NotApplicable(UserError):
    """The mutation makes no sense for this config (for example LoRA alpha without LoRA)."""


def with_values(cfg: Config, updates: dict) -> Config:
    data = to_dict(cfg)  # a fresh nested dict: editing it leaves `cfg` as it was
    for dotted, value in updates.items():
        node = data
        *sections, key = dotted.split(".")
        for section in sections:
            node = node[section]
        if key not in node:
            raise KeyError(f"mutation sets unknown config key {dotted!r}")
        node[key] = value
    return from_dict(data)


def scaled_int(value: int, factor: float, multiple: int = 1, minimum: int = 1) -> int:
    """round(value * factor) to a multiple of `multiple`, at least `minimum`."""
    return max(minimum, int(round(value * factor / multiple)) * multiple)


def factor_of(variant: str) -> float:
    """'x0.5' -> 0.5; the variant names of relative mutations."""
    return float(variant[1:])


def fixed_weights_reason(parent: Config, child: Config) -> str | None:
    """Why `child` cannot be trained from parent's train.init_from checkpoint, or None."""
    start = parent.train.init_from
    if not start or child.train.init_from != start:
        return None
    changes = diff(parent, child)
    for key, (old, new) in changes.items():
        if key.startswith("model.") and key not in FINE_TUNING_MODEL_KEYS:
            return f"train.init_from={start} fixes the architecture; {key} would change from {old!r} to {new!r}"
        if key in ("data.tokenizer", "data.tokenizer_path", "data.bpe_vocab_size"):
            return f"train.init_from={start} fixes the tokenizer; {key} would change from {old!r} to {new!r}"
    if "model.block_size" in changes:
        from foundry.model.shapes import weight_shapes
        before, after = weight_shapes(parent.model), weight_shapes(child.model)
        for name, shape in before.items():
            if after.get(name) != shape:
                return f"train.init_from={start} fixes the weights' shapes; {name} would change from {shape} to {after.get(name)}"
    return None
