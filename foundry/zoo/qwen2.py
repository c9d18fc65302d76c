"""Qwen2 (Qwen2ForCausalLM) <-> Foundry: Llama's names plus biases on q/k/v (none on o_proj),
Foundry's `qkv_bias`. Qwen2's per-layer sliding window (use_sliding_window) is not supported."""
from foundry.zoo.family import Family, Rule, check_head_dim, read_attention, read_rope, write_rope
from foundry.zoo.llama import CONFIG, LAYER_WEIGHTS, REQUIRES

BIASES = (
    Rule(("model.layers.{}.self_attn.q_proj.bias",), ("blocks.{}.attn.q_proj.bias",)),
    Rule(("model.layers.{}.self_attn.k_proj.bias", "model.layers.{}.self_attn.v_proj.bias"),
         ("blocks.{}.attn.kv_proj.bias",)),
)


def read(hf: dict) -> dict:
    check_head_dim(hf, "hidden_size", "num_attention_heads")
    return {**read_attention(hf, "num_attention_heads", "num_key_value_heads"), **read_rope(hf)}


def write(m) -> dict:
    return {"num_key_value_heads": m.kv_heads, "sliding_window": None, **write_rope(m)}


QWEN2 = Family(
    name="qwen2", architecture="Qwen2ForCausalLM", model_type="qwen2", weights=LAYER_WEIGHTS + BIASES, config=CONFIG,
    requires={**REQUIRES, "qkv_bias": (True,), "attention": ("gqa", "mha"), "position": ("rope",)},
    hf_requires={"hidden_act": ("silu",), "use_sliding_window": (False,)},
    hf_defaults={"tie_word_embeddings": False, "rms_norm_eps": 1e-6, "max_position_embeddings": 32768},
    read=read, write=write, prefix="model.",
)
