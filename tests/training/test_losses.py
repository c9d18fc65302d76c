"""Focal and label-smoothing losses against their definitions.

    python -m pytest tests/modules/test_losses.py -q
"""
import torch
import torch.nn.functional as F

from foundry import catalog
from foundry.training.losses import LOSSES


def loss_for(name, **train):
    cfg = catalog.from_dict({"train": {"loss": name, **train}, "budget": {"steps": 1}})
    return LOSSES[name](cfg.train)


def test_focal_matches_its_formula_and_reduces_to_cross_entropy():
    torch.manual_seed(0)
    logits, targets = torch.randn(2, 5, 7), torch.randint(0, 7, (2, 5))
    targets[0, :2] = -1  # ignored (prompt / padding)
    keep = targets != -1
    p = F.softmax(logits, -1).gather(-1, targets.clamp(min=0)[..., None]).squeeze(-1)[keep]
    expected = (-(1 - p) ** 2 * p.log()).mean()
    torch.testing.assert_close(loss_for("focal", focal_gamma=2.0)(logits, targets), expected)
    torch.testing.assert_close(loss_for("focal", focal_gamma=0.0)(logits, targets),
                               loss_for("cross_entropy")(logits, targets))


def test_label_smoothing_mixes_in_the_uniform_distribution():
    torch.manual_seed(0)
    logits, targets = torch.randn(2, 5, 7), torch.randint(0, 7, (2, 5))
    targets[1, -1] = -1
    log_p = F.log_softmax(logits, -1)[targets != -1]  # (N, V)
    nll = -log_p.gather(-1, targets[targets != -1][:, None]).squeeze(-1)
    expected = (0.9 * nll - 0.1 * log_p.mean(-1)).mean()
    torch.testing.assert_close(loss_for("label_smoothing", label_smoothing=0.1)(logits, targets), expected)
