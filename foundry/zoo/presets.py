"""Named model shapes of published families: `model.preset: NAME` fills every model key a config
leaves out (explicit keys still win), so a campaign can train, say, a Llama-3-shaped model from
scratch. `foundry zoo list` prints them with parameter counts and FLOPs per token.

    model: {preset: llama3-1b, n_layer: 4}      # the Llama 3.2 1B shape, four layers deep

Each shape is the published config.json's (hidden size, layers, heads, KV heads, intermediate
size, vocabulary, rope theta and scaling, norm epsilon, tying); block_size is the context the
model was trained at. `model.vocab_size: 0` takes the tokenizer's vocabulary instead. This file is
plain data: foundry.catalog reads it while loading any config.
"""

_LLAMA = {"attention": "gqa", "norm": "rmsnorm", "activation": "swiglu", "ffn": "dense", "bias": False}
_LLAMA3_ROPE = {"position": "llama3_rope", "rope_base": 500000.0, "rope_low_freq_factor": 1.0,
                "rope_high_freq_factor": 4.0, "rope_original_positions": 8192}
_GPT2 = {"attention": "mha", "n_kv_head": 0, "norm": "layernorm", "norm_eps": 1e-5, "activation": "gelu",
         "position": "learned", "ffn": "dense", "bias": True, "tie_embeddings": True, "mlp_ratio": 4.0,
         "block_size": 1024, "vocab_size": 50257}

PRESETS = {
    # Llama 3.2 1B
    "llama3-1b": {**_LLAMA, **_LLAMA3_ROPE, "n_layer": 16, "n_embd": 2048, "n_head": 32, "n_kv_head": 8,
                  "mlp_hidden": 8192, "vocab_size": 128256, "norm_eps": 1e-5, "rope_factor": 32.0,
                  "tie_embeddings": True, "block_size": 8192},
    # Llama 3.1 8B
    "llama3-8b": {**_LLAMA, **_LLAMA3_ROPE, "n_layer": 32, "n_embd": 4096, "n_head": 32, "n_kv_head": 8,
                  "mlp_hidden": 14336, "vocab_size": 128256, "norm_eps": 1e-5, "rope_factor": 8.0,
                  "tie_embeddings": False, "block_size": 8192},
    # Mistral 7B v0.1: sliding window of 4096 tokens
    "mistral-7b": {**_LLAMA, "attention": "sliding_window", "window": 4096, "position": "rope",
                   "rope_base": 10000.0, "n_layer": 32, "n_embd": 4096, "n_head": 32, "n_kv_head": 8,
                   "mlp_hidden": 14336, "vocab_size": 32000, "norm_eps": 1e-5, "tie_embeddings": False,
                   "block_size": 8192},
    # Qwen2 0.5B and 1.5B: biases on q/k/v only, tied embeddings
    "qwen2-0.5b": {**_LLAMA, "qkv_bias": True, "position": "rope", "rope_base": 1000000.0, "n_layer": 24,
                   "n_embd": 896, "n_head": 14, "n_kv_head": 2, "mlp_hidden": 4864, "vocab_size": 151936,
                   "norm_eps": 1e-6, "tie_embeddings": True, "block_size": 32768},
    "qwen2-1.5b": {**_LLAMA, "qkv_bias": True, "position": "rope", "rope_base": 1000000.0, "n_layer": 28,
                   "n_embd": 1536, "n_head": 12, "n_kv_head": 2, "mlp_hidden": 8960, "vocab_size": 151936,
                   "norm_eps": 1e-6, "tie_embeddings": True, "block_size": 32768},
    "gpt2": {**_GPT2, "n_layer": 12, "n_embd": 768, "n_head": 12},
    "gpt2-medium": {**_GPT2, "n_layer": 24, "n_embd": 1024, "n_head": 16},
}
