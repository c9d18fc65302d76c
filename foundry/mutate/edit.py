"""The one way a mutation builds its result: copy the config, set dotted keys, re-validate.

    new = with_values(cfg, {"model.attention": "gqa", "model.n_kv_head": 1})

The input is never touched (the dict round-trip is a deep copy); the result goes through
foundry.config.from_dict, so a component's `check` rejects impossible combinations with a reason.
A mutation that has nothing sensible to do raises NotApplicable with that reason.
"""
from __future__ import annotations

from foundry.catalog import from_dict
from foundry.config import Config, to_dict
from foundry.errors import UserError


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
