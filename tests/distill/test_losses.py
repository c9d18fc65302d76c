"""The distillation divergences and soft targets against their definitions: KL x T^2 against
F.kl_div, the T^2 gradient scale, JSD and TVD closed forms, top-k buckets with the missing mass."""
import math

import pytest
import torch
import torch.nn.functional as F

from foundry.distill.losses import DISTILL_LOSSES, full_vocabulary, top_k_buckets
from foundry.distill.teacher import top_k


def logits(seed: int, n: int = 6, v: int = 11, scale: float = 2.0):
    return torch.randn(n, v, generator=torch.Generator().manual_seed(seed)) * scale


@pytest.mark.parametrize("temperature", [1.0, 2.0, 4.0])
def test_kl_times_t_squared_equals_torch_kl_div(temperature):
    teacher, student = logits(0), logits(1)
    p_log, q_log = full_vocabulary(teacher, student, temperature)
    ours = temperature ** 2 * DISTILL_LOSSES["kl"]()(p_log, q_log).mean()
    reference = temperature ** 2 * F.kl_div(F.log_softmax(student / temperature, dim=-1),
                                            F.log_softmax(teacher / temperature, dim=-1),
                                            log_target=True, reduction="batchmean")
    assert ours.item() == pytest.approx(reference.item(), rel=1e-5)


def test_t_squared_keeps_the_soft_gradient_scale_across_temperatures():
    """Hinton et al.: d(T^2 KL)/dz_s -> (z_s - z_t) / V for small zero-mean logits, at every T;
    without T^2 the gradient would shrink as 1 / T^2."""
    teacher, student = logits(2, scale=0.05), logits(3, scale=0.05)
    teacher, student = teacher - teacher.mean(-1, keepdim=True), student - student.mean(-1, keepdim=True)
    expected = (student - teacher) / student.shape[-1] / student.shape[0]  # mean over rows
    norms = {}
    for T in (1.0, 2.0, 4.0):
        z = student.clone().requires_grad_(True)
        loss = T ** 2 * DISTILL_LOSSES["kl"]()(*full_vocabulary(teacher, z, T)).mean()
        loss.backward()
        assert ((z.grad - expected).norm() / expected.norm()).item() < 0.05, T
        norms[T] = z.grad.norm().item()
        unscaled = torch.autograd.grad(DISTILL_LOSSES["kl"]()(*full_vocabulary(teacher, z, T)).mean(), z)[0]
        assert unscaled.norm().item() == pytest.approx(norms[T] / T ** 2, rel=1e-5)
    assert norms[4.0] / norms[1.0] == pytest.approx(1.0, abs=0.05)


def test_jsd_and_tvd_match_their_closed_forms():
    p_log, q_log = full_vocabulary(logits(4), logits(5), 1.0)
    p, q = p_log.exp().double(), q_log.exp().double()
    m = (p + q) / 2
    jsd = 0.5 * (p * (p / m).log()).sum(-1) + 0.5 * (q * (q / m).log()).sum(-1)
    assert torch.allclose(DISTILL_LOSSES["jsd"]()(p_log, q_log).double(), jsd, atol=1e-6)
    assert torch.allclose(DISTILL_LOSSES["tvd"]()(p_log, q_log).double(), 0.5 * (p - q).abs().sum(-1), atol=1e-6)
    assert torch.allclose(DISTILL_LOSSES["jsd"]()(p_log, q_log), DISTILL_LOSSES["jsd"]()(q_log, p_log), atol=1e-6)


@pytest.mark.parametrize("name", sorted(DISTILL_LOSSES))
def test_every_divergence_is_zero_on_equal_distributions_positive_otherwise_and_bounded(name):
    divergence = DISTILL_LOSSES[name]()
    p_log, q_log = full_vocabulary(logits(6), logits(7), 2.0)
    assert torch.allclose(divergence(p_log, p_log), torch.zeros(len(p_log)), atol=1e-6)
    values = divergence(p_log, q_log)
    assert (values > 0).all()
    if name == "jsd":
        assert (values <= math.log(2) + 1e-6).all()
    if name == "tvd":
        assert (values <= 1).all()
    z = logits(7).requires_grad_(True)
    divergence(*full_vocabulary(logits(6), z, 2.0)).mean().backward()
    assert torch.isfinite(z.grad).all() and z.grad.abs().sum() > 0


def test_top_k_buckets_hold_the_missing_mass_exactly_at_temperature_one():
    teacher, student = logits(8), logits(9)
    index, top_logp, tail = top_k(teacher, 3)
    p_log, q_log = top_k_buckets(index, top_logp, tail, student, 1.0)
    p, q = F.softmax(teacher, -1), F.softmax(student, -1)
    p_top, q_top = p.gather(-1, index), q.gather(-1, index)
    assert torch.allclose(p_log.exp(), torch.cat([p_top, 1 - p_top.sum(-1, keepdim=True)], -1), atol=1e-6)
    assert torch.allclose(q_log.exp(), torch.cat([q_top, 1 - q_top.sum(-1, keepdim=True)], -1), atol=1e-6)


@pytest.mark.parametrize("temperature", [0.5, 2.0, 4.0])
def test_top_k_buckets_are_exact_when_the_rest_is_uniform(temperature):
    """The tempered rest assumes its tokens share its mass evenly: exact when they do."""
    teacher = logits(10)
    teacher[:, :4] = teacher[:, :4].abs() + 1.0  # the top 4 ...
    teacher[:, 4:] = -1.0  # ... and the other tokens all alike
    index, top_logp, tail = top_k(teacher, 4)
    p_log, _ = top_k_buckets(index, top_logp, tail, logits(11), temperature)
    p = F.softmax(teacher / temperature, -1)
    p_top = p.gather(-1, index)
    assert torch.allclose(p_log.exp(), torch.cat([p_top, 1 - p_top.sum(-1, keepdim=True)], -1), atol=1e-5)


@pytest.mark.parametrize("temperature", [1.0, 3.0])
def test_top_k_of_the_whole_vocabulary_is_the_full_distribution(temperature):
    teacher, student = logits(12), logits(13)
    index, top_logp, tail = top_k(teacher, teacher.shape[-1])
    assert torch.isinf(tail).all()
    p_log, q_log = top_k_buckets(index, top_logp, tail, student, temperature)
    full_p, full_q = full_vocabulary(teacher, student, temperature)
    assert torch.allclose(p_log, full_p.gather(-1, index), atol=1e-5)
    assert torch.allclose(q_log, full_q.gather(-1, index), atol=1e-5)
