"""Focal loss (Lin et al., 2017) for next-token prediction: -(1 - p_t)^gamma * log p_t.

gamma = train.focal_gamma (0 = plain cross-entropy); larger gamma down-weights tokens the model
already predicts well. Targets of -1 are ignored. Select with `train.loss: focal`.
"""
import torch.nn.functional as F

from foundry.model.protocols import Loss


class FocalLoss(Loss):
    def __init__(self, train_cfg):
        super().__init__()
        self.gamma = train_cfg.focal_gamma

    def forward(self, logits, targets):  # (B, T, V), (B, T) -> scalar
        log_probs = F.log_softmax(logits.flatten(0, 1).float(), dim=-1)  # (N, V)
        flat = targets.flatten()  # (N,)
        keep = flat != -1
        log_p = log_probs.gather(1, flat.clamp(min=0)[:, None]).squeeze(1)  # (N,) log p of the target
        loss = -(1.0 - log_p.exp()).pow(self.gamma) * log_p
        return (loss * keep).sum() / keep.sum().clamp(min=1)

    @staticmethod
    def check(cfg):
        if cfg.train.focal_gamma < 0:
            return f"focal: train.focal_gamma must not be negative, got {cfg.train.focal_gamma}"
        return None


LOSSES = {"focal": FocalLoss}
