"""Mutations of the model: attention kind, FFN, per-layer patterns, depth, width, heads, norms,
positions, loss.

Each is `name(cfg, variant) -> new Config` built through edit.with_values (input untouched,
result validated). The registry ARCHITECTURE at the end maps type -> (function, variants).
"""
from foundry.mutate.edit import NotApplicable, factor_of, scaled_int, with_values

# Fields that only one attention kind reads; reset when switching away so hashes stay canonical.
_ATTENTION_EXTRAS = {"model.window": 0, "model.stride": 0, "model.kv_lora_rank": 0, "model.rope_dim": 0}


def attention(cfg, variant):
    """Attention kind: full multi-head, grouped KV heads, latent KV, local window, sparse pattern."""
    m = cfg.model
    local = max(1, m.block_size // 4)
    settings = {
        "mha": {"model.attention": "mha", "model.n_kv_head": 0},
        "gqa_1kv": {"model.attention": "gqa", "model.n_kv_head": 1},
        "gqa_2kv": {"model.attention": "gqa", "model.n_kv_head": 2},
        "mla": {"model.attention": "mla", "model.n_kv_head": 0},
        "sliding_window": {"model.attention": "sliding_window", "model.n_kv_head": 0, "model.window": local},
        "sparse": {"model.attention": "sparse", "model.n_kv_head": 0,
                   "model.window": max(1, m.block_size // 8), "model.stride": max(1, m.block_size // 8)},
    }[variant]
    return with_values(cfg, {**_ATTENTION_EXTRAS, **settings})


def layers(cfg, variant):
    """Layers that differ (model.layers): local sliding-window attention on every other layer with
    full attention between (as Gemma 2 / nanochat's window pattern), on all but the last layer, or a
    mixture of experts on every other layer (GShard / Switch interleaving); `uniform` clears them."""
    m = cfg.model
    local = {"attention": "sliding_window", "window": max(1, m.block_size // 4), "n_kv_head": 0}
    if variant != "uniform" and m.n_layer < 2:
        raise NotApplicable(f"model.n_layer={m.n_layer}: a layer pattern needs at least 2 layers")
    pattern = {"uniform": {}, "local_global": {"0::2": local}, "local_but_last": {"0:-1": local},
               "moe_alternate": {"1::2": {"ffn": "moe", "n_experts": 4, "top_k": 2}}}[variant]
    if pattern == m.layers:
        raise NotApplicable(f"model.layers is already {variant}")
    return with_values(cfg, {"model.layers": pattern})


def ffn(cfg, variant):
    """Feed-forward kind: one dense MLP, or a mixture of experts (4 experts top-2, 8 experts top-1)."""
    settings = {
        "dense": {"model.ffn": "dense"},
        "moe": {"model.ffn": "moe", "model.n_experts": 4, "model.top_k": 2},
        "moe_8x1": {"model.ffn": "moe", "model.n_experts": 8, "model.top_k": 1},
    }[variant]
    return with_values(cfg, settings)


def depth(cfg, variant):
    """Number of transformer blocks: one fewer/more, half, double."""
    n = cfg.model.n_layer
    if cfg.model.stages:
        raise NotApplicable("model.stages set the depth per stage (mutation stage_depth)")
    new = {"minus1": n - 1, "plus1": n + 1, "half": n // 2, "double": n * 2}[variant]
    if new < 1:
        raise NotApplicable(f"model.n_layer={n} cannot go to {new}")
    return with_values(cfg, {"model.n_layer": new})


def width(cfg, variant):
    """Residual width n_embd scaled, kept a multiple of 2 x n_head (even head size for RoPE)."""
    m = cfg.model
    step = 2 * m.n_head
    return with_values(cfg, {"model.n_embd": scaled_int(m.n_embd, factor_of(variant), step, step)})


def heads(cfg, variant):
    """Number of query heads at fixed width (head size changes); KV groups follow when set."""
    m = cfg.model
    n = scaled_int(m.n_head, factor_of(variant))
    kv = min(m.n_kv_head, n) if m.n_kv_head else 0
    return with_values(cfg, {"model.n_head": n, "model.n_kv_head": kv})


def mlp_ratio(cfg, variant):
    """Hidden width of the MLP as a multiple of n_embd."""
    if cfg.model.mlp_hidden:
        raise NotApplicable(f"model.mlp_hidden={cfg.model.mlp_hidden} sets the MLP width; mlp_ratio is not read")
    return with_values(cfg, {"model.mlp_ratio": float(variant)})


def context(cfg, variant):
    """Context length block_size: half or double. A step budget is rescaled so the token budget stays the same."""
    old, new = cfg.model.block_size, scaled_int(cfg.model.block_size, factor_of(variant), 1, 8)
    updates = {"model.block_size": new}
    if cfg.budget.steps:
        updates["budget.steps"] = max(1, round(cfg.budget.steps * old / new))
    return with_values(cfg, updates)


def norm(cfg, variant):
    """Normalisation layer kind."""
    return with_values(cfg, {"model.norm": variant})


def qk_norm(cfg, variant):
    """Normalise queries and keys per head before the dot product."""
    return with_values(cfg, {"model.qk_norm": variant == "on"})


def activation(cfg, variant):
    """MLP activation (swiglu and glu are gated)."""
    return with_values(cfg, {"model.activation": variant})


def position(cfg, variant):
    """Position information: rotary, ALiBi bias, learned absolute, or none (causal mask only)."""
    return with_values(cfg, {"model.position": variant})


def tie_embeddings(cfg, variant):
    """Share the token embedding with the output head."""
    return with_values(cfg, {"model.tie_embeddings": variant == "on"})


def dropout(cfg, variant):
    """Dropout probability on attention, residual branches and embeddings."""
    return with_values(cfg, {"model.dropout": float(variant)})


def loss(cfg, variant):
    """Training loss: cross-entropy, focal (gamma 2), label smoothing (epsilon 0.1)."""
    settings = {"cross_entropy": {}, "focal": {"train.focal_gamma": 2.0},
                "label_smoothing": {"train.label_smoothing": 0.1}}[variant]
    return with_values(cfg, {"train.loss": variant, **settings})


ARCHITECTURE = {
    "attention": (attention, ("mha", "gqa_1kv", "gqa_2kv", "mla", "sliding_window", "sparse")),
    "ffn": (ffn, ("dense", "moe", "moe_8x1")),
    "layers": (layers, ("uniform", "local_global", "local_but_last", "moe_alternate")),
    "depth": (depth, ("minus1", "plus1", "half", "double")),
    "width": (width, ("x0.75", "x1.5", "x2")),
    "heads": (heads, ("x0.5", "x2")),
    "mlp_ratio": (mlp_ratio, ("2", "3", "6")),
    "context": (context, ("x0.5", "x2")),
    "norm": (norm, ("rmsnorm", "layernorm")),
    "qk_norm": (qk_norm, ("on", "off")),
    "activation": (activation, ("gelu", "gelu_exact", "swiglu", "glu", "relu2")),
    "position": (position, ("rope", "alibi", "learned", "none")),
    "tie_embeddings": (tie_embeddings, ("on", "off")),
    "dropout": (dropout, ("0", "0.1")),
    "loss": (loss, ("cross_entropy", "focal", "label_smoothing")),
}
