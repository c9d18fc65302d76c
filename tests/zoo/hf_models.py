"""Tiny random Hugging Face models of every supported family, built with transformers from a
config and saved to a folder (no hub access), with a small byte-level BPE tokenizer.

    folder = save_tiny(tmp_path / "llama", "llama")      # config.json, model.safetensors, tokenizer
    model = load_hf(folder)                               # AutoModelForCausalLM, fp32, eager, eval
"""
import os

import torch

TEXT = ("The quick brown fox jumps over the lazy dog. def f(x):\n    return x * 2\n"
        "Pack my box with five dozen liquor jugs! 0123456789 (a, b) = [c, d]\n") * 40
VOCAB = 320  # the model's; the tokenizer has fewer (models often pad their vocabulary)


def tiny_tokenizer():
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=300, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  special_tokens=["<s>", "</s>"], show_progress=False)
    tok.train_from_iterator(TEXT.splitlines(keepends=True), trainer=trainer)
    return tok


def hf_config(family: str, **extra):
    import transformers as tf
    common = dict(vocab_size=VOCAB, bos_token_id=0, eos_token_id=1)
    llama_like = dict(hidden_size=64, num_attention_heads=4, num_key_value_heads=2, intermediate_size=112,
                      num_hidden_layers=2, max_position_embeddings=128, **common)
    configs = {
        "llama": lambda: tf.LlamaConfig(**llama_like, rms_norm_eps=1e-5, tie_word_embeddings=False,
                                        rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                                                      "high_freq_factor": 4.0, "original_max_position_embeddings": 32},
                                        rope_theta=500000.0),
        "mistral": lambda: tf.MistralConfig(**llama_like, sliding_window=16, rms_norm_eps=1e-5, tie_word_embeddings=False),
        "qwen2": lambda: tf.Qwen2Config(**llama_like, rms_norm_eps=1e-6, tie_word_embeddings=True, rope_theta=1e6),
        "gpt2": lambda: tf.GPT2Config(n_embd=64, n_layer=2, n_head=4, n_positions=128, **common),
    }
    config = configs[family]()
    for key, value in extra.items():
        setattr(config, key, value)
    return config


def save_tiny(folder, family: str, seed: int = 0, max_shard_size=None, **extra) -> str:
    """A random model of `family` with every weight and bias non-trivial, saved as transformers does."""
    import transformers as tf
    torch.manual_seed(seed)
    model = tf.AutoModelForCausalLM.from_config(hf_config(family, **extra), attn_implementation="eager")
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(p + torch.randn_like(p) * (0.1 if p.dim() == 1 else 0.05))  # biases and norms off 0 and 1
    folder = os.fspath(folder)
    kwargs = {"max_shard_size": max_shard_size} if max_shard_size else {}
    model.save_pretrained(folder, **kwargs)
    tf.PreTrainedTokenizerFast(tokenizer_object=tiny_tokenizer(), bos_token="<s>", eos_token="</s>").save_pretrained(folder)
    return folder


def load_hf(folder):
    import transformers as tf
    return tf.AutoModelForCausalLM.from_pretrained(folder, attn_implementation="eager", dtype=torch.float32).eval()


def save_foundry_run(run_dir, model, cfg, tokenizer) -> str:
    """A Foundry run folder holding `model` as its checkpoint (what training would leave)."""
    from foundry.weights.checkpoint import save_checkpoint
    os.makedirs(run_dir, exist_ok=True)
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.0)
    save_checkpoint(os.fspath(run_dir), model, optimizer, cfg, tokenizer, {"step": 0})
    return os.fspath(run_dir)


def load_reporting(folder):
    """(model, problems): AutoModelForCausalLM.from_pretrained, with every missing / unexpected /
    mismatched key and every warning or warning-level log line it produced."""
    import logging
    import warnings

    import transformers as tf
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logger = tf.logging.get_logger("transformers")
    logger.addHandler(handler)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            model, info = tf.AutoModelForCausalLM.from_pretrained(folder, output_loading_info=True)
    finally:
        logger.removeHandler(handler)
    problems = [f"{kind}: {keys}" for kind, keys in info.items() if keys]
    problems += [r.getMessage() for r in records if r.levelno >= logging.WARNING]
    problems += [str(w.message) for w in caught if "is_gradient_checkpointing" not in str(w.message)]
    return model.eval(), problems
