"""Next-token cross-entropy, the default loss. Targets of -1 are ignored (padding, prompts)."""
import torch.nn.functional as F

from foundry.model.protocols import Loss


class CrossEntropy(Loss):
    def __init__(self, train_cfg):
        super().__init__()

    def forward(self, logits, targets):  # (B, T, V), (B, T) -> scalar
        return F.cross_entropy(logits.flatten(0, 1).float(), targets.flatten(), ignore_index=-1)


LOSSES = {"cross_entropy": CrossEntropy}
