"""Shared fixtures: the shared data folder, a token cache per test session, a tiny config
around one named component (tiny_config; NEEDS says what a component needs to be valid), and a
real local Ray cluster for the Ray backend's tests (ray_cluster, tests/ray_cluster.py).

FOUNDRY_DATA must point at the shared data sets (../shared/data); tests that need it fail,
not skip, when it is missing, so CI cannot pass without the real data.
"""
import os

import pytest

from foundry import catalog

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if os.environ.get("FOUNDRY_DATA"):
    # The README passes a relative path; subprocesses of tests run in other folders.
    os.environ["FOUNDRY_DATA"] = os.path.abspath(os.environ["FOUNDRY_DATA"])


@pytest.fixture(autouse=True, scope="session")
def _isolated_cache(tmp_path_factory):
    """Token caches and measured peaks go to a temporary folder, never the user's home."""
    os.environ["FOUNDRY_CACHE"] = str(tmp_path_factory.mktemp("foundry-cache"))
    yield


@pytest.fixture(autouse=True, scope="session")
def _one_thread():
    """Tiny models gain nothing from intra-op threads, and on a busy 2-core machine the threads
    spin against each other (measured ~10x slower). Subprocesses inherit OMP_NUM_THREADS."""
    import torch
    threads, env = torch.get_num_threads(), os.environ.get("OMP_NUM_THREADS")
    torch.set_num_threads(1)
    os.environ["OMP_NUM_THREADS"] = "1"
    yield
    torch.set_num_threads(threads)
    if env is None:
        os.environ.pop("OMP_NUM_THREADS")
    else:
        os.environ["OMP_NUM_THREADS"] = env


@pytest.fixture(scope="session")
def ray_cluster(tmp_path_factory) -> str:
    """The address (127.0.0.1:PORT) of a real one-node Ray cluster, 2 CPUs, shared by the Ray tests."""
    from tests.ray_cluster import start_head, stop_head
    head, address = start_head(str(tmp_path_factory.mktemp("ray") / "head.log"))
    yield address
    stop_head(head)


@pytest.fixture
def shared_data() -> str:
    path = os.environ.get("FOUNDRY_DATA")
    assert path, "FOUNDRY_DATA is not set: point it at the shared data folder (../shared/data)"
    assert os.path.isfile(os.path.join(path, "tinyshakespeare.txt")), f"{path}: no tinyshakespeare.txt"
    return path


@pytest.fixture
def tiny_text(tmp_path) -> str:
    """A small plain-text corpus file (about 40 KB), deterministic."""
    words = ["the", "quick", "brown", "fox", "jumps", "over", "lazy", "dog", "and", "cat"]
    lines = [" ".join(words[(i * 7 + j * 3) % len(words)] for j in range(12)) for i in range(600)]
    path = tmp_path / "corpus.txt"
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def tiny_overrides(source: str, steps: int = 4) -> list[str]:
    """Overrides that make any config train in about a second."""
    return [f"data.source={source}", "model.n_layer=1", "model.n_head=2", "model.n_embd=32",
            "model.block_size=32", "train.batch_size=4", "train.warmup_steps=2",
            f"budget.steps={steps}", "budget.tokens=0", "budget.seconds=0",
            "eval.interval=1000", "eval.bytes=256"]


# what a component needs on top of the defaults to be valid (and exercised) on the tiny model
NEEDS = {
    ("attention", "gqa"): {"model": {"n_kv_head": 2}},
    ("attention", "sliding_window"): {"model": {"window": 5, "n_kv_head": 2}},
    ("attention", "sparse"): {"model": {"window": 4, "stride": 3}},
    ("ffn", "moe"): {"model": {"n_experts": 4, "top_k": 2}},
    # head_dim 8 has wavelengths 6..6283: an original context of 16 puts them in every band
    ("position", "llama3_rope"): {"model": {"rope_original_positions": 16, "rope_factor": 4.0}},
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
        return catalog.from_dict(data)
    return build
