"""DPO (foundry/dpo.py and the `dpo` loss component): pair batching, the objective, and a toy
preference set the policy learns.

    python -m pytest tests/modules/test_dpo.py -q
"""
import math

import pytest
import torch
import torch.nn.functional as F

from foundry.data.tokenizer import ByteTokenizer
from foundry.errors import UserError
from foundry.model.gpt import GPT
from foundry.training.dpo import (
    dpo_loss,
    dpo_step,
    frozen_reference,
    pair_batch,
    sequence_logprob,
)
from foundry.training.losses import LOSSES

# toy preferences: answer politely ("yes, ...") rather than curtly
PAIRS = [{"prompt": f"Q: {q}?\nA:", "chosen": " yes, gladly", "rejected": " no."}
         for q in ("tea", "help", "more", "again", "now", "why")]


def test_pair_batch_scores_only_response_tokens():
    batch = pair_batch(PAIRS[:2], ByteTokenizer(), block_size=64)
    assert batch["idx"].shape == batch["targets"].shape == (4, len("Q: help?\nA: yes, gladly") - 1)
    chosen_row, rejected_row = batch["targets"][0], batch["targets"][2]  # chosen rows come first
    assert bytes(chosen_row[chosen_row != -1].tolist()) == b" yes, gladly"
    assert bytes(rejected_row[rejected_row != -1].tolist()) == b" no."
    assert torch.equal(batch["mask"], batch["targets"] != -1)
    long = pair_batch([{"prompt": "x" * 50, "chosen": "abc", "rejected": "d"}], ByteTokenizer(), 8)
    assert long["idx"].shape[1] <= 8 and long["mask"][0].sum() == 3  # prompt cut from the left


def test_sequence_logprob_sums_scored_tokens():
    torch.manual_seed(0)
    logits, targets = torch.randn(2, 4, 5), torch.tensor([[-1, 1, 2, -1], [0, -1, -1, 3]])
    log_p = F.log_softmax(logits, -1)
    expected = torch.stack([log_p[0, 1, 1] + log_p[0, 2, 2], log_p[1, 0, 0] + log_p[1, 3, 3]])
    torch.testing.assert_close(sequence_logprob(logits, targets), expected)


def test_dpo_loss_margin_and_accuracy():
    loss, margin, accuracy = dpo_loss(torch.tensor([-1.0, -2.0]), torch.tensor([-3.0, -1.0]),
                                      torch.tensor([-2.0, -2.0]), torch.tensor([-2.0, -2.0]), beta=0.5)
    rewards = torch.tensor([0.5 * 1 - 0.5 * -1, 0.5 * 0 - 0.5 * 1])  # chosen minus rejected reward
    assert math.isclose(loss.item(), -F.logsigmoid(rewards).mean().item(), rel_tol=1e-6)
    assert math.isclose(margin.item(), rewards.mean().item()) and accuracy.item() == 0.5


def test_dpo_training_prefers_the_chosen_responses(tiny_config):
    torch.manual_seed(0)
    cfg = tiny_config("loss", "dpo", n_layer=1, block_size=32)
    model = GPT(cfg.model)
    reference = frozen_reference(model)
    batch = pair_batch(PAIRS, ByteTokenizer(), cfg.model.block_size)
    loss, margin, accuracy = dpo_step(model, reference, batch, cfg.train.dpo_beta)
    assert math.isclose(loss.item(), math.log(2), rel_tol=1e-5) and margin.item() == 0  # policy == reference
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for _ in range(10):
        loss, margin, accuracy = dpo_step(model, reference, batch, cfg.train.dpo_beta)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert loss.item() < 0.5 and margin.item() > 0 and accuracy.item() == 1.0
    assert all(p.grad is None for p in reference.parameters())  # the reference stayed frozen
    loss_fn = LOSSES["dpo"](cfg.train)  # the trainer's component computes the same objective
    assert loss_fn.needs_pairs
    with torch.no_grad():
        via_step = dpo_step(model, reference, batch, cfg.train.dpo_beta)[0]
        via_component = loss_fn(model(batch["idx"]), batch["targets"], reference(batch["idx"]))
    torch.testing.assert_close(via_component, via_step)
    assert set(loss_fn.stats) == {"dpo_reward_margin", "dpo_reward_accuracy"}
    with pytest.raises(UserError, match="needs preference pairs"):
        loss_fn(model(batch["idx"]), batch["targets"])
