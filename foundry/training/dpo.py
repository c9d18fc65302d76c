"""Direct Preference Optimization (Rafailov et al., 2023) on {prompt, chosen, rejected} pairs.

The policy is trained so that, relative to a frozen reference (usually the policy's own starting
weights), it raises the log-probability of the chosen response over the rejected one:

    loss = -log sigmoid(beta * ((pi_c - pi_r) - (ref_c - ref_r)))

with pi_c = sum of log p(response tokens | prompt) under the policy (likewise the others).

    pairs = load_preference_pairs("prefs.jsonl")          # foundry.data: one JSON object per line
    ref = frozen_reference(model)                         # a detached copy, eval mode
    batch = pair_batch(pairs[:8], tokenizer, cfg.model.block_size)
    loss, margin, accuracy = dpo_step(model, ref, batch, beta=cfg.train.dpo_beta)
    loss.backward()

A batch holds 2B rows: the B chosen sequences, then the B rejected ones; `targets` is -1 on the
prompt and the padding, so only response tokens are scored. The loss component
foundry.training.losses.dpo (train.loss: dpo) wraps the same math for the trainer.
"""
from __future__ import annotations

import copy

import torch
import torch.nn.functional as F

from foundry.errors import UserError


def encode_response(tokenizer, prompt: str, response: str, block_size: int):
    """(input ids, targets) lists of equal length <= block_size; targets are -1 on the prompt.

    Too long: the response keeps its first block_size tokens, the prompt its last ones.
    """
    prompt_ids, response_ids = tokenizer.encode(prompt), tokenizer.encode(response)
    if not response_ids:
        raise UserError(f"empty response after prompt {prompt[:40]!r}")
    response_ids = response_ids[:block_size]
    prompt_ids = prompt_ids[max(0, len(prompt_ids) - (block_size + 1 - len(response_ids))):]
    tokens = prompt_ids + response_ids
    if len(tokens) < 2:
        raise UserError(f"pair with prompt {prompt[:40]!r}: nothing to score (one token in all)")
    # targets[i] is tokens[i + 1]; it is scored only when that token belongs to the response
    targets = [t if i + 1 >= len(prompt_ids) else -1 for i, t in enumerate(tokens[1:])]
    return tokens[:-1], targets


def pair_batch(pairs: list[dict], tokenizer, block_size: int, device="cpu") -> dict:
    """Pairs -> {"idx", "targets", "mask"}: (2B, T) tensors, chosen rows first, right-padded.

    Padding sits after each sequence, so causal attention never lets it touch scored positions.
    """
    rows = [encode_response(tokenizer, p["prompt"], p[side], block_size)
            for side in ("chosen", "rejected") for p in pairs]
    T = max(len(ids) for ids, _ in rows)
    idx = torch.zeros(len(rows), T, dtype=torch.long)
    targets = torch.full((len(rows), T), -1, dtype=torch.long)
    for r, (ids, tgt) in enumerate(rows):
        idx[r, :len(ids)] = torch.tensor(ids)
        targets[r, :len(tgt)] = torch.tensor(tgt)
    return {"idx": idx.to(device), "targets": targets.to(device), "mask": (targets != -1).to(device)}


def sample_pair_batch(pairs: list[dict], tokenizer, batch_size: int, block_size: int, rng, device="cpu",
                      rows=slice(None)):
    """A random batch of `batch_size` pairs (numpy Generator `rng`), as pair_batch; `rows`: the
    part of it this process trains on (several processes draw the same batch)."""
    chosen = rng.choice(len(pairs), size=min(batch_size, len(pairs)), replace=False)
    return pair_batch([pairs[i] for i in chosen[rows]], tokenizer, block_size, device)


def sequence_logprob(logits, targets):
    """(R, T, V) logits, (R, T) targets with -1 = unscored -> (R,) summed log-probabilities."""
    log_probs = F.log_softmax(logits.float(), dim=-1)  # (R, T, V)
    picked = log_probs.gather(-1, targets.clamp(min=0).unsqueeze(-1)).squeeze(-1)  # (R, T)
    return (picked * (targets != -1)).sum(dim=-1)


def dpo_loss(policy_chosen, policy_rejected, ref_chosen, ref_rejected, beta: float):
    """Per-pair sequence log-probs (B,) each -> (loss, reward_margin, accuracy).

    The implicit reward of a response is beta * (log pi - log ref); the margin is the mean of
    chosen minus rejected reward, the accuracy the share of pairs where chosen wins. The last two
    are detached scalars, for logs.
    """
    chosen_reward = beta * (policy_chosen - ref_chosen)  # (B,)
    rejected_reward = beta * (policy_rejected - ref_rejected)
    loss = -F.logsigmoid(chosen_reward - rejected_reward).mean()
    margin = (chosen_reward - rejected_reward).detach()
    return loss, margin.mean(), (margin > 0).float().mean()


def pair_loss(logits, ref_logits, targets, beta: float):
    """DPO on a pair batch: (2B, T, V) policy and reference logits, (2B, T) targets."""
    policy, ref = sequence_logprob(logits, targets), sequence_logprob(ref_logits, targets)  # (2B,)
    B = targets.shape[0] // 2
    return dpo_loss(policy[:B], policy[B:], ref[:B], ref[B:], beta)


def frozen_reference(model):
    """A copy of `model` that never trains: eval mode (no dropout), no gradients."""
    return copy.deepcopy(model).eval().requires_grad_(False)


def dpo_step(model, ref_model, batch: dict, beta: float):
    """Forward both models on a pair batch -> (loss with grad, reward_margin, accuracy).

    The caller calls loss.backward() and steps its optimizer; for a mixture-of-experts policy it
    adds model.aux_loss() as it does for the language-model loss.
    """
    logits = model(batch["idx"])  # (2B, T, V)
    with torch.no_grad():
        ref_logits = ref_model(batch["idx"])
    return pair_loss(logits, ref_logits, batch["targets"], beta)
