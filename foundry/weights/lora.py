"""LoRA adapters (through peft) on every linear layer of the GPT except the language-model head.

    model = apply_lora(GPT(cfg.model), cfg.train)    # train.lora_rank > 0; base weights frozen
    model = merge_lora(model)                        # W + scale B A folded in, plain nn.Linear again

Used by the trainer (usually with train.init_from, to fine-tune a checkpoint) and by
checkpoint.load_model, which rebuilds the same adapters before loading the weights.
On a pruned layer (a `weight_mask`, foundry/weights/masks.py) the adapter's update is masked
too: the layer computes x (M * (W + scale B A))^T, so the adapters train the sparse model they
will be merged into, and merge_lora re-applies the masks: sparsity is exact after merging.
merged_weights(reader, train_cfg) reads a LoRA checkpoint's tensors with the adapters merged in,
one at a time (foundry zoo export).
"""
import torch.nn.functional as F
from torch import nn

from foundry.errors import UserError
from foundry.weights.masks import apply_masks, mask_of, masked_modules

ADAPTER = "default"  # the adapter name inject_adapter_in_model gives; checkpoints hold X.lora_A.default.weight


def _masked_update(module, args, output):
    """Forward hook on a LoRA layer: remove the part of its update that falls on pruned weights."""
    mask = mask_of(module.base_layer)
    if mask is None or module.merged or module.disable_adapters:
        return output
    delta = module.get_delta_weight(ADAPTER)  # (out, in) = scale * B @ A
    x = args[0]
    return output - F.linear(x.to(delta.dtype), delta * ~mask).to(output.dtype)


def apply_lora(model, train_cfg):
    if train_cfg.lora_rank <= 0:
        return model
    from peft import LoraConfig, inject_adapter_in_model
    from peft.tuners.lora import LoraLayer

    if train_cfg.lora_dropout and masked_modules(model):
        raise UserError("train.lora_dropout must be 0 on a pruned model (its masked LoRA update is exact only "
                        f"without dropout), got {train_cfg.lora_dropout}")
    # The head shares its weight with the embedding when tied; adapting it would adapt both.
    targets = sorted(name for name, module in model.named_modules()
                     if isinstance(module, nn.Linear) and name != "lm_head")
    config = LoraConfig(r=train_cfg.lora_rank, lora_alpha=train_cfg.lora_alpha,
                        lora_dropout=train_cfg.lora_dropout, target_modules=targets)
    model = inject_adapter_in_model(config, model)
    for name, param in model.named_parameters():
        param.requires_grad_("lora_" in name)
    for module in model.modules():
        if isinstance(module, LoraLayer):
            module.register_forward_hook(_masked_update)
    return model


def merge_lora(model):
    """Fold every LoRA adapter into its base weight and unwrap it; masks are re-applied after."""
    from peft.tuners.lora import LoraLayer

    wrapped = [(name, module) for name, module in model.named_modules() if isinstance(module, LoraLayer)]
    for name, module in wrapped:
        module.merge()
        parent, _, child = name.rpartition(".")
        setattr(model.get_submodule(parent) if parent else model, child, module.base_layer)
    for param in model.parameters():
        param.requires_grad_(True)
    apply_masks(model)
    return model


def lora_modules(names) -> list[str]:
    """The modules of a checkpoint's tensor names that carry LoRA adapters."""
    return sorted({n.rsplit(".lora_A.", 1)[0] for n in names if ".lora_A." in n})


def base_name(name: str) -> str:
    """A checkpoint name without peft's wrapper: X.base_layer.weight -> X.weight."""
    return name.replace(".base_layer.", ".")


def merged_weights(reader, train_cfg):
    """(specs, get): the plain model's {name: (dtype, shape)} and a function returning each tensor
    with its LoRA update merged in (W + alpha / r * B @ A, in fp32, cast back), read on demand from
    `reader` (a foundry.weights.tensors.TensorReader over a checkpoint)."""
    names = set(reader.names())
    scale = train_cfg.lora_alpha / train_cfg.lora_rank if train_cfg.lora_rank else 0.0
    stored = {base_name(n): n for n in names if ".lora_" not in n}
    specs = {plain: reader.spec(n) for plain, n in stored.items()}

    def get(name):
        tensor = reader.get(stored[name])
        module = name.rsplit(".", 1)[0]
        if name.endswith(".weight") and f"{module}.lora_A.{ADAPTER}.weight" in names:
            a = reader.get(f"{module}.lora_A.{ADAPTER}.weight").float()  # (r, in)
            b = reader.get(f"{module}.lora_B.{ADAPTER}.weight").float()  # (out, r)
            tensor = (tensor.float() + scale * (b @ a)).to(tensor.dtype)
        return tensor
    return specs, get
