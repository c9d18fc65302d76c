"""The training losses `train.loss` names, gathered from the registry at the end of each file.

    LOSSES[name](train_cfg)     forward(logits (B, T, V), targets (B, T)) -> scalar (protocol: model.protocols.Loss)

A loss with `needs_pairs = True` (dpo) trains on preference pairs against a frozen reference
(foundry/training/dpo.py). To add one: write its file ending with its registry, add it below.
"""
from foundry.training.losses import cross_entropy, dpo, focal, label_smoothing

LOSSES = {**cross_entropy.LOSSES, **focal.LOSSES, **label_smoothing.LOSSES, **dpo.LOSSES}
