"""GPT-2 (GPT2LMHeadModel) <-> Foundry. Its Conv1D layers store weights (in, out), hence
`transpose`; the fused c_attn [q; k; v] splits into Foundry's q_proj and kv_proj = [k; v].
The causal-mask buffers that old checkpoints saved (attn.bias, attn.masked_bias) are skipped.
activation_function gelu_new (tanh) is Foundry's `gelu`, and the exact "gelu" its `gelu_exact`."""
from foundry.model.modules.mlp import hidden_width
from foundry.zoo.family import Family, Rule

WEIGHTS = (
    Rule(("transformer.wte.weight",), ("wte.weight",)),
    Rule(("transformer.wpe.weight",), ("position.wpe.weight",)),
    Rule(("transformer.h.{}.ln_1.weight",), ("blocks.{}.norm1.weight",)),
    Rule(("transformer.h.{}.ln_1.bias",), ("blocks.{}.norm1.bias",)),
    Rule(("transformer.h.{}.attn.c_attn.weight",), ("blocks.{}.attn.q_proj.weight", "blocks.{}.attn.kv_proj.weight"),
         transpose=True),
    Rule(("transformer.h.{}.attn.c_attn.bias",), ("blocks.{}.attn.q_proj.bias", "blocks.{}.attn.kv_proj.bias")),
    Rule(("transformer.h.{}.attn.c_proj.weight",), ("blocks.{}.attn.c_proj.weight",), transpose=True),
    Rule(("transformer.h.{}.attn.c_proj.bias",), ("blocks.{}.attn.c_proj.bias",)),
    Rule(("transformer.h.{}.ln_2.weight",), ("blocks.{}.norm2.weight",)),
    Rule(("transformer.h.{}.ln_2.bias",), ("blocks.{}.norm2.bias",)),
    Rule(("transformer.h.{}.mlp.c_fc.weight",), ("blocks.{}.ffn.mlp.c_fc.weight",), transpose=True),
    Rule(("transformer.h.{}.mlp.c_fc.bias",), ("blocks.{}.ffn.mlp.c_fc.bias",)),
    Rule(("transformer.h.{}.mlp.c_proj.weight",), ("blocks.{}.ffn.mlp.c_proj.weight",), transpose=True),
    Rule(("transformer.h.{}.mlp.c_proj.bias",), ("blocks.{}.ffn.mlp.c_proj.bias",)),
    Rule(("transformer.ln_f.weight",), ("norm_f.weight",)),
    Rule(("transformer.ln_f.bias",), ("norm_f.bias",)),
    Rule(("lm_head.weight",), ("lm_head.weight",), untied_only=True),
)

CONFIG = (("n_layer", "n_layer"), ("n_head", "n_head"), ("n_embd", "n_embd"), ("vocab_size", "vocab_size"),
          ("block_size", "n_positions"), ("norm_eps", "layer_norm_epsilon"), ("tie_embeddings", "tie_word_embeddings"))


ACTIVATIONS = {"gelu_new": "gelu", "gelu_pytorch_tanh": "gelu", "gelu": "gelu_exact"}  # HF -> Foundry


def read(hf: dict) -> dict:
    width = {"mlp_hidden": hf["n_inner"]} if hf.get("n_inner") else {"mlp_ratio": 4.0}
    return {**width, "activation": ACTIVATIONS[hf.get("activation_function", "gelu_new")]}


def write(m) -> dict:
    activation = "gelu" if m.activation == "gelu_exact" else "gelu_new"
    return {"n_inner": hidden_width(m, gated=False), "n_ctx": m.block_size, "activation_function": activation}


GPT2 = Family(
    name="gpt2", architecture="GPT2LMHeadModel", model_type="gpt2", weights=WEIGHTS, config=CONFIG,
    requires={"attention": ("mha",), "n_kv_head": (0,), "norm": ("layernorm",), "activation": ("gelu", "gelu_exact"),
              "position": ("learned",), "ffn": ("dense",), "bias": (True,), "qk_norm": (False,), "layers": ({},)},
    hf_requires={"activation_function": tuple(ACTIVATIONS), "scale_attn_weights": (True,),
                 "scale_attn_by_inverse_layer_idx": (False,), "reorder_and_upcast_attn": (False, True)},
    hf_defaults={"tie_word_embeddings": True, "layer_norm_epsilon": 1e-5, "n_positions": 1024},
    read=read, write=write, prefix="transformer.", ignored=("transformer.h.{}.attn.bias", "transformer.h.{}.attn.masked_bias"),
)
