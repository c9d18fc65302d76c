"""Divergences between a teacher's and a student's next-token distributions, and the soft targets.

    teacher_logp, student_logp = full_vocabulary(teacher_logits, student_logits, temperature)
    teacher_logp, student_logp = top_k_buckets(top_index, top_logp, tail_logp, student_logits, T)
    per_token = DISTILL_LOSSES["kl"]()(teacher_logp, student_logp)      # (N, K) each -> (N,)

`train.distill.loss` names the divergence; the distiller multiplies it by T^2 (Hinton et al., 2015:
the soft targets' gradients scale as 1/T^2, so T^2 keeps their weight against the hard labels
when the temperature changes) and by 1 - alpha.

Top-k soft targets keep the missing probability mass as an explicit bucket: the teacher's k most
likely tokens and one "rest" bucket holding the remaining mass, both for the teacher and (summed
over the same tokens) for the student, so each side is a proper distribution over k + 1 outcomes.
Only the teacher's top-k log-probabilities at temperature 1 and its rest mass are stored (online or
in the cache); at temperature T the top-k entries are exact up to normalisation, and the rest's
tempered mass assumes its tokens share the rest evenly (each (V - k) of them at rest / (V - k)):
exact at T = 1, an upper bound on the true tempered rest for T > 1. top_k = 0 (the whole
vocabulary, a live teacher) is exact at every temperature.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def full_vocabulary(teacher_logits, student_logits, temperature: float):
    """(N, V) logits each -> (N, V) log-probabilities at the temperature, fp32."""
    return (F.log_softmax(teacher_logits.float() / temperature, dim=-1),
            F.log_softmax(student_logits.float() / temperature, dim=-1))


def top_k_buckets(top_index, top_logp, tail_logp, student_logits, temperature: float):
    """The teacher's top k (N, k) token ids and log-probs at T = 1, its rest log-mass (N,), and the
    student's logits (N, V) -> (N, k + 1) log-probabilities of both over [top k..., rest] at T.
    With k = V there is no rest: (N, V) each."""
    V, k = student_logits.shape[-1], top_index.shape[-1]
    student = F.log_softmax(student_logits.float() / temperature, dim=-1)  # (N, V)
    student_top = student.gather(-1, top_index)  # (N, k)
    teacher_top = top_logp.float() / temperature
    if k == V:
        return F.log_softmax(teacher_top, dim=-1), student_top
    rest = V - k
    teacher_rest = math.log(rest) + (tail_logp.float() - math.log(rest)) / temperature  # (N,)
    teacher = F.log_softmax(torch.cat([teacher_top, teacher_rest[:, None]], dim=-1), dim=-1)
    student_rest = student.scatter(-1, top_index, float("-inf")).logsumexp(dim=-1)  # (N,) exact
    return teacher, torch.cat([student_top, student_rest[:, None]], dim=-1)


def _kl(p_log, q_log):
    """KL(p || q) per row from log-probabilities; 0 log 0 = 0."""
    p = p_log.exp()
    return torch.where(p > 0, p * (p_log - q_log), torch.zeros_like(p)).sum(dim=-1)


class KLDivergence(nn.Module):
    """KL(teacher || student): the forward KL of Hinton et al. (mode-covering)."""

    def forward(self, teacher_logp, student_logp):  # (N, K), (N, K) -> (N,)
        return _kl(teacher_logp, student_logp)


class JensenShannon(nn.Module):
    """Jensen-Shannon divergence: the mean KL of each side to their average (symmetric, <= log 2)."""

    def forward(self, teacher_logp, student_logp):  # (N, K), (N, K) -> (N,)
        mixture = torch.logaddexp(teacher_logp, student_logp) - math.log(2.0)
        return 0.5 * (_kl(teacher_logp, mixture) + _kl(student_logp, mixture))


class TotalVariation(nn.Module):
    """Total variation distance: half the L1 distance between the probabilities (in [0, 1])."""

    def forward(self, teacher_logp, student_logp):  # (N, K), (N, K) -> (N,)
        return 0.5 * (teacher_logp.exp() - student_logp.exp()).abs().sum(dim=-1)


DISTILL_LOSSES = {"kl": KLDivergence, "jsd": JensenShannon, "tvd": TotalVariation}
