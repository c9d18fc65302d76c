"""foundry.catalog's number checks: every int and float setting of the schema has a range in
RANGES, a value just outside either end of it is refused naming the key, and the memory check
counts a model's parameters exactly and refuses one that cannot fit."""
import dataclasses
import math
import typing

import pytest

from foundry import catalog, config
from foundry.config import ConfigError, in_range
from foundry.model.gpt import GPT

BASE = {"model": {"n_layer": 2, "n_head": 2, "n_embd": 32, "block_size": 16}, "budget": {"steps": 5}}


def numeric_keys() -> list[str]:
    keys = []
    for section in config.SECTIONS:
        cls = typing.get_type_hints(config.Config)[section]
        hints = typing.get_type_hints(cls)
        keys += [f"{section}.{f.name}" for f in dataclasses.fields(cls) if hints[f.name] in (int, float)]
    return keys


def test_every_numeric_setting_has_a_range():
    assert sorted(numeric_keys()) == sorted(catalog.RANGES)
    for interval in catalog.RANGES.values():   # and every default lies inside its own range
        assert interval[0] in "[(" and interval[-1] in "])"
    defaults = config.flat(config.Config())
    for key, interval in catalog.RANGES.items():
        if key.startswith("budget."):
            continue   # the budget's defaults are all 0: exactly one is set by a config
        assert in_range(defaults[key], interval), key


def outside(key: str) -> list:
    """Values just outside both ends of the key's range (nan too, for floats)."""
    section, name = key.split(".")
    is_int = typing.get_type_hints(type(getattr(config.Config(), section)))[name] is int
    interval = catalog.RANGES[key]
    low, high = (float(x) for x in interval[1:-1].split(","))
    step = 1 if is_int else max(abs(low), abs(high), 1.0) * 1e-6
    values = [low if interval[0] == "(" else low - step, high if interval[-1] == ")" else high + step]
    return [int(v) for v in values] if is_int else values + [math.nan]


@pytest.mark.parametrize("key", sorted(catalog.RANGES))
def test_a_value_outside_the_range_is_refused_naming_the_key(key):
    section, name = key.split(".")
    for value in outside(key):
        data = {**BASE, section: {**BASE.get(section, {}), name: value}}
        with pytest.raises(ConfigError) as err:
            catalog.from_dict(data)
        assert str(err.value).startswith(key + ":"), (value, str(err.value))


def test_parameter_count_is_exact_and_a_model_too_large_for_memory_is_refused():
    for extra in ({}, {"ffn": "moe", "n_experts": 4, "top_k": 2}, {"layers": {"1::2": {"ffn": "moe"}}},
                  {"tie_embeddings": False, "position": "learned"}):
        cfg = catalog.from_dict({**BASE, "model": {**BASE["model"], "vocab_size": 256, **extra}})
        assert catalog.count_params(cfg, catalog.layer_groups(cfg.model)) == GPT(cfg.model).num_params(), extra
    huge = catalog.from_dict({**BASE, "model": {**BASE["model"], "n_layer": 1_000_000}})   # loads: only training refuses
    with pytest.raises(ConfigError, match=r"model: 12\.4 billion parameters need about [\d,.]+ GiB to train"):
        catalog.check_fits(huge)
    catalog.check_fits(cfg)   # a small model fits
