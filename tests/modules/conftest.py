"""Fixtures for component tests: a tiny, valid config built around one named component."""
import pytest

from foundry import config

# what a component needs on top of the defaults to be valid (and exercised) on the tiny model
NEEDS = {
    ("attention", "gqa"): {"model": {"n_kv_head": 2}},
    ("attention", "sliding_window"): {"model": {"window": 5, "n_kv_head": 2}},
    ("attention", "sparse"): {"model": {"window": 4, "stride": 3}},
    ("ffn", "moe"): {"model": {"n_experts": 4, "top_k": 2}},
    ("loss", "dpo"): {"data": {"source": "prefs.jsonl"}},
}


def _merge(into: dict, extra: dict) -> dict:
    for key, value in extra.items():
        if isinstance(value, dict):
            _merge(into.setdefault(key, {}), value)
        else:
            into[key] = value
    return into



@pytest.fixture
def tiny_config():
    """tiny_config(kind, name, **model_overrides) -> Config with that component, validated."""
    def build(kind=None, name=None, **model):
        data = {"model": {"n_layer": 2, "n_head": 4, "n_embd": 32, "block_size": 16, "vocab_size": 256,
                          "mlp_ratio": 2.0},
                "train": {"lr": 1e-2}, "budget": {"steps": 1}}
        if kind == "loss":
            data["train"]["loss"] = name
        elif kind is not None:
            data["model"][kind] = name
        _merge(data, NEEDS.get((kind, name), {}))
        _merge(data, {"model": model})
        return config.from_dict(data)
    return build
