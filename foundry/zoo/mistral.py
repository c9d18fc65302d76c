"""Mistral (MistralForCausalLM) <-> Foundry: Llama's tables plus the sliding window
(config.json `sliding_window`, null for none) as Foundry's sliding_window attention."""
from foundry.zoo.family import Family, check_head_dim, read_attention, read_rope, write_rope
from foundry.zoo.llama import CONFIG, LAYER_WEIGHTS, REQUIRES


def read(hf: dict) -> dict:
    check_head_dim(hf, "hidden_size", "num_attention_heads")
    out = {**read_attention(hf, "num_attention_heads", "num_key_value_heads"), **read_rope(hf)}
    if hf.get("sliding_window"):
        out.update(attention="sliding_window", n_kv_head=hf.get("num_key_value_heads") or 0,
                   window=hf["sliding_window"])
    return out


def write(m) -> dict:
    window = m.window if m.attention == "sliding_window" else None
    return {"num_key_value_heads": m.kv_heads, "head_dim": m.head_dim, "sliding_window": window, **write_rope(m)}


MISTRAL = Family(
    name="mistral", architecture="MistralForCausalLM", model_type="mistral", weights=LAYER_WEIGHTS, config=CONFIG,
    requires={**REQUIRES, "attention": ("sliding_window", "gqa", "mha"), "position": ("rope",)},
    hf_requires={"hidden_act": ("silu",)},
    hf_defaults={"tie_word_embeddings": False, "rms_norm_eps": 1e-6, "max_position_embeddings": 131072},
    read=read, write=write, prefix="model.",
)
