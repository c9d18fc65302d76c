"""The DPO loss component (`train.loss: dpo`, beta = train.dpo_beta): trains on preference pairs
against a frozen reference model instead of next-token targets. The math lives in foundry/training/dpo.py.

`needs_pairs = True` tells the trainer to feed pair batches (foundry.training.dpo.sample_pair_batch) and
call the loss with the reference model's logits as well:

    loss = loss_fn(policy_logits, batch["targets"], ref_logits)   # (2B, T, V), (2B, T), (2B, T, V)
    loss_fn.stats  -> {"dpo_reward_margin": ..., "dpo_reward_accuracy": ...} for the logs
"""
from foundry.errors import UserError
from foundry.model.protocols import Loss
from foundry.training.dpo import pair_loss


class DPOLoss(Loss):
    objective = "preference"
    needs_pairs = True

    def __init__(self, train_cfg):
        super().__init__()
        self.beta = train_cfg.dpo_beta
        self.stats = {}

    def forward(self, logits, targets, ref_logits=None):  # (2B, T, V), (2B, T), (2B, T, V) -> scalar
        if ref_logits is None:
            raise UserError("train.loss=dpo needs preference pairs and a reference model's logits; "
                            "it cannot score plain next-token batches")
        loss, margin, accuracy = pair_loss(logits, ref_logits, targets, self.beta)
        self.stats = {"dpo_reward_margin": margin, "dpo_reward_accuracy": accuracy}
        return loss

    @staticmethod
    def check(cfg):
        if cfg.train.dpo_beta <= 0:
            return f"dpo: train.dpo_beta must be positive, got {cfg.train.dpo_beta}"
        if not cfg.data.source.endswith(".jsonl"):
            return (f"dpo trains on preference pairs: data.source must be a JSONL file of "
                    f"{{prompt, chosen, rejected}} records, got {cfg.data.source!r}")
        return None


LOSSES = {"dpo": DPOLoss}
