"""Weights on disk and the adapters on them: checkpoints in safetensors (checkpoint.py) and LoRA
through peft (lora.py). Shared by training and by every weight-space tool (zoo, merge, genetics,
distill, prune, fusion), which use it only through these public functions.

    from foundry.weights.checkpoint import load_model, save_checkpoint
"""
