"""Llama (LlamaForCausalLM; Llama 2 and 3, with Llama 3's rope_scaling) <-> Foundry.

The weight table: Hugging Face name (with "{}" for the layer) -> Foundry name; k/v and gate/up are
fused on the Foundry side. Mistral and Qwen2 reuse LAYER_WEIGHTS (their checkpoints use the same names).
"""
from foundry.zoo.family import Family, Rule, check_head_dim, read_attention, read_rope, write_rope

LAYER_WEIGHTS = (
    Rule(("model.embed_tokens.weight",), ("wte.weight",)),
    Rule(("model.layers.{}.input_layernorm.weight",), ("blocks.{}.norm1.weight",)),
    Rule(("model.layers.{}.self_attn.q_proj.weight",), ("blocks.{}.attn.q_proj.weight",)),
    Rule(("model.layers.{}.self_attn.k_proj.weight", "model.layers.{}.self_attn.v_proj.weight"),
         ("blocks.{}.attn.kv_proj.weight",)),
    Rule(("model.layers.{}.self_attn.o_proj.weight",), ("blocks.{}.attn.c_proj.weight",)),
    Rule(("model.layers.{}.post_attention_layernorm.weight",), ("blocks.{}.norm2.weight",)),
    Rule(("model.layers.{}.mlp.gate_proj.weight", "model.layers.{}.mlp.up_proj.weight"),
         ("blocks.{}.ffn.mlp.gate_up.weight",)),
    Rule(("model.layers.{}.mlp.down_proj.weight",), ("blocks.{}.ffn.mlp.c_proj.weight",)),
    Rule(("model.norm.weight",), ("norm_f.weight",)),
    Rule(("lm_head.weight",), ("lm_head.weight",), untied_only=True),
)

# (Foundry model key, config.json key), the same in Llama, Mistral and Qwen2
CONFIG = (("n_layer", "num_hidden_layers"), ("n_head", "num_attention_heads"), ("n_embd", "hidden_size"),
          ("mlp_hidden", "intermediate_size"), ("vocab_size", "vocab_size"),
          ("block_size", "max_position_embeddings"), ("norm_eps", "rms_norm_eps"),
          ("tie_embeddings", "tie_word_embeddings"))

# what every model of the Llama kind has on the Foundry side
REQUIRES = {"norm": ("rmsnorm",), "activation": ("swiglu",), "ffn": ("dense",), "bias": (False,),
            "qkv_bias": (False,), "qk_norm": (False,), "layers": ({},)}


def read(hf: dict) -> dict:
    check_head_dim(hf, "hidden_size", "num_attention_heads")
    return {**read_attention(hf, "num_attention_heads", "num_key_value_heads"), **read_rope(hf)}


def write(m) -> dict:
    return {"num_key_value_heads": m.kv_heads, "head_dim": m.head_dim, **write_rope(m)}


LLAMA = Family(
    name="llama", architecture="LlamaForCausalLM", model_type="llama", weights=LAYER_WEIGHTS, config=CONFIG,
    requires={**REQUIRES, "attention": ("gqa", "mha"), "position": ("rope", "llama3_rope")},
    hf_requires={"hidden_act": ("silu",), "attention_bias": (False,), "mlp_bias": (False,), "pretraining_tp": (1,)},
    hf_defaults={"tie_word_embeddings": False, "rms_norm_eps": 1e-6, "max_position_embeddings": 2048},
    read=read, write=write, prefix="model.",
)
