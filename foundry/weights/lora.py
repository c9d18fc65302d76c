"""LoRA adapters (through peft) on every linear layer of the GPT except the language-model head.

    model = apply_lora(GPT(cfg.model), cfg.train)    # train.lora_rank > 0; base weights frozen

Used by the trainer (usually with train.init_from, to fine-tune a checkpoint) and by
checkpoint.load_model, which rebuilds the same adapters before loading the weights.
"""
from torch import nn


def apply_lora(model, train_cfg):
    if train_cfg.lora_rank <= 0:
        return model
    from peft import LoraConfig, inject_adapter_in_model

    # The head shares its weight with the embedding when tied; adapting it would adapt both.
    targets = sorted(name for name, module in model.named_modules()
                     if isinstance(module, nn.Linear) and name != "lm_head")
    config = LoraConfig(r=train_cfg.lora_rank, lora_alpha=train_cfg.lora_alpha,
                        lora_dropout=train_cfg.lora_dropout, target_modules=targets)
    model = inject_adapter_in_model(config, model)
    for name, param in model.named_parameters():
        param.requires_grad_("lora_" in name)
    return model
