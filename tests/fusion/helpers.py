"""Experts for the fusion tests: small random GPTs of two families and widths saved as Foundry
checkpoints (nothing trained: the tests check structure and numerics), two small corpora, and
recipes over them.

    gpt2, llama = make_expert(tmp / "gpt2", "gpt2"), make_expert(tmp / "llama", "llama")
    recipe = two_expert_recipe({"gpt2": gpt2, "llama": llama}, base="llama", corpora=corpora(tmp))
"""
import os

import torch

from foundry import catalog
from foundry.data import ByteTokenizer
from foundry.model.gpt import GPT
from foundry.weights.checkpoint import save_checkpoint

FAMILIES = {  # GPT-2 style (layernorm, learned positions, tanh GELU, biases, tied) and Llama style, two widths
    "gpt2": {"n_layer": 2, "n_head": 2, "n_embd": 32, "block_size": 32, "attention": "mha", "norm": "layernorm",
             "position": "learned", "activation": "gelu", "bias": True, "tie_embeddings": True},
    "llama": {"n_layer": 3, "n_head": 2, "n_kv_head": 1, "n_embd": 48, "block_size": 32, "attention": "gqa",
              "norm": "rmsnorm", "position": "rope", "activation": "swiglu", "bias": False,
              "tie_embeddings": False},
}


def make_expert(folder, family: str, seed: int = 0, **model) -> str:
    """A random expert of `family` (norm gains and biases off 1 and 0) saved as a run folder."""
    cfg = catalog.from_dict({"name": family, "model": {**FAMILIES[family], "vocab_size": 256, **model},
                             "budget": {"steps": 1}, "train": {"dtype": "fp32"}})
    torch.manual_seed(seed)
    gpt = GPT(cfg.model)
    with torch.no_grad():
        for p in gpt.parameters():
            p.add_(torch.randn_like(p) * (0.1 if p.dim() == 1 else 0.02))
    os.makedirs(folder, exist_ok=True)
    optimizer = torch.optim.SGD(gpt.parameters(), lr=0.0)
    save_checkpoint(os.fspath(folder), gpt, optimizer, cfg, ByteTokenizer(), {"step": 0})
    return os.fspath(folder)


def corpora(folder) -> dict:
    """Two small text files of different character: prose and code (about 20 KB each)."""
    os.makedirs(folder, exist_ok=True)
    words = ["the", "king", "doth", "speak", "and", "all", "his", "lords", "are", "silent", "now"]
    prose = "\n".join(" ".join(words[(i * 5 + j * 3) % len(words)] for j in range(9)) for i in range(400))
    code = "\n".join(f"def f{i}(x, y={i % 7}):\n    return [x * {i} + y for _ in range({i % 5})]" for i in range(300))
    paths = {"prose": os.path.join(folder, "prose.txt"), "code": os.path.join(folder, "code.txt")}
    for name, text in (("prose", prose), ("code", code)):
        with open(paths[name], "w") as f:
            f.write(text + "\n")
    return paths


def two_expert_recipe(experts: dict, base: str, corpora: dict, adapter="linear", router="pooled", **extra) -> dict:
    """Two fused layers over the experts' first two blocks each, trained for a few steps."""
    names = list(experts)
    layers = [{"sources": [{"expert": n, "layer_range": [i, i + 1]} for n in names]} for i in range(2)]
    recipe = {"name": "fused-test", "experts": experts, "base": base, "layers": layers,
              "adapter": {"kind": adapter, "bottleneck": 8}, "router": {"kind": router, "top_k": 1},
              "lr": {"adapters": 3e-3, "routers": 1e-2}, "mixture": corpora,
              "train": {"batch_size": 4, "warmup_steps": 2, "dtype": "fp32", "seed": 0},
              "budget": {"steps": 4}, "eval": {"interval": 1000, "bytes": 512}}
    recipe.update(extra)
    return recipe
