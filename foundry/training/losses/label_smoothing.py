"""Cross-entropy with label smoothing (Szegedy et al., 2016): the target distribution puts
1 - epsilon on the true token and spreads epsilon uniformly over the vocabulary.

epsilon = train.label_smoothing. Targets of -1 are ignored. Select with `train.loss: label_smoothing`.
"""
import torch.nn.functional as F

from foundry.model.protocols import Loss


class LabelSmoothingLoss(Loss):
    def __init__(self, train_cfg):
        super().__init__()
        self.epsilon = train_cfg.label_smoothing

    def forward(self, logits, targets):  # (B, T, V), (B, T) -> scalar
        return F.cross_entropy(logits.flatten(0, 1).float(), targets.flatten(), ignore_index=-1,
                               label_smoothing=self.epsilon)

    @staticmethod
    def check(cfg):
        if not 0.0 <= cfg.train.label_smoothing < 1.0:
            return f"label_smoothing: train.label_smoothing must be in [0, 1), got {cfg.train.label_smoothing}"
        return None


LOSSES = {"label_smoothing": LabelSmoothingLoss}
