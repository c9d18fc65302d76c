"""The distillation loss of one micro-batch: hard labels, the teacher's soft targets, hidden states.

    distiller = Distiller(cfg, device, dataset, hard_loss)   # a live teacher or a cache (train.distill)
    distiller.start(student)                                  # vocabulary check, feature hooks, projections
    loss = distiller(student, x, y, doc_ids=None)             # x, y (B, T) on the CPU; doc_ids: packed rows
    distiller.stats                                           # distill_hard, distill_soft, distill_feature

    loss = alpha * hard(logits, y) + (1 - alpha) * T^2 * D(teacher_T || student_T) + weight * features

`hard` is train.loss (cross-entropy by default), D is train.distill.loss (kl, jsd, tvd; losses.py),
averaged over the tokens that have a target (y >= 0: not padding, inside data.loss_on), with top_k > 0 over the teacher's top k plus a bucket for the missing mass.
Feature distillation (features.weight > 0) adds the mean over `pairs` of the MSE, or 1 - cosine,
between the student block's output (through a learned linear projection when the widths differ)
and the teacher block's output. The projections train with the student (the objective hands them
to the optimizer) and are saved with its optimizer state, not in its weights.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from foundry.distill.losses import DISTILL_LOSSES, full_vocabulary, top_k_buckets
from foundry.errors import UserError


class Distiller:
    def __init__(self, cfg, device, dataset, hard_loss):
        from foundry.distill.cache import TeacherCache
        from foundry.distill.teacher import Teacher
        self.cfg, self.d, self.device, self.hard_loss = cfg, cfg.train.distill, device, hard_loss
        self.divergence = DISTILL_LOSSES[self.d.loss]()
        self.teacher = self.cache = None
        if self.d.teacher:
            self.teacher = Teacher(self.d.teacher, cfg)
            self.teacher.check(dataset.tokenizer, cfg)
        else:
            self.cache = TeacherCache(self.d.cache, cfg, dataset)
        self.projections = nn.ModuleList()
        self.pairs, self.student_hidden, self.stats = [], {}, {}

    def start(self, model) -> None:
        vocab = model.cfg.vocab_size
        if self.teacher is not None:
            self.teacher.check_vocab(vocab)
        elif self.cache.vocab_size != vocab:
            raise UserError(f"train.distill.cache: written for a vocabulary of {self.cache.vocab_size}, "
                            f"the student has model.vocab_size={vocab}")
        f = self.d.features
        if not f.weight:
            return
        n = len(model.blocks)
        teacher_layers = self.teacher.watch([t for _, t in f.pairs])
        for (s, _), t in zip(f.pairs, teacher_layers):
            s %= n
            if s not in self.student_hidden:
                def keep(module, args, output, s=s):
                    self.student_hidden[s] = output
                model.blocks[s].register_forward_hook(keep)
            width_s, width_t = model.cfg.n_embd, self.teacher.cfg.model.n_embd
            projection = nn.Identity() if width_s == width_t else nn.Linear(width_s, width_t, bias=False)
            self.projections.append(projection.to(self.device))
            self.pairs.append((s, t))

    def parameters(self) -> list:
        return list(self.projections.parameters())

    def soft_targets(self, x, logits, doc_ids=None):
        """(teacher, student) log-probabilities (N, K) at the temperature, for the divergence."""
        T, k = self.d.temperature, self.d.top_k
        student = logits.flatten(0, 1)  # (N, V)
        if self.cache is not None:
            index, logp, tail = (t.to(self.device, non_blocking=True) for t in self.cache.lookup(x))
            return top_k_buckets(index.flatten(0, 1), logp.flatten(0, 1), tail.flatten(), student, T)
        teacher_logits = self.teacher(x, doc_ids)  # (B, T, V) on the teacher's device, no graph
        if k == 0:
            return full_vocabulary(teacher_logits.flatten(0, 1).to(self.device, non_blocking=True), student, T)
        from foundry.distill.teacher import top_k
        index, logp, tail = (t.to(self.device, non_blocking=True) for t in top_k(teacher_logits, k))
        return top_k_buckets(index.flatten(0, 1), logp.flatten(0, 1), tail.flatten(), student, T)

    def feature_loss(self):
        losses = []
        for (s, t), projection in zip(self.pairs, self.projections):
            student = projection(self.student_hidden[s].float())  # (B, T, C_teacher)
            teacher = self.teacher.hidden[t].float().to(self.device, non_blocking=True)
            if self.d.features.loss == "mse":
                losses.append(F.mse_loss(student, teacher))
            else:
                losses.append((1 - F.cosine_similarity(student, teacher, dim=-1)).mean())
        return torch.stack(losses).mean()

    def __call__(self, model, x, y, doc_ids=None):
        d = self.d
        y = y.to(self.device, non_blocking=True)
        if doc_ids is None:
            logits = model(x.to(self.device, non_blocking=True))  # (B, T, V)
        else:
            logits = model(x.to(self.device, non_blocking=True), doc_ids=doc_ids.to(self.device, non_blocking=True))
        hard = self.hard_loss(logits, y)
        teacher_logp, student_logp = self.soft_targets(x, logits, doc_ids)
        has_target = (y >= 0).flatten().float()  # (N,)
        soft = (self.divergence(teacher_logp, student_logp) * has_target).sum() / has_target.sum().clamp(min=1)
        loss = d.alpha * hard + (1 - d.alpha) * d.temperature ** 2 * soft
        self.stats = {"distill_hard": hard.detach(), "distill_soft": soft.detach()}
        if d.features.weight:
            feature = self.feature_loss()
            loss = loss + d.features.weight * feature
            self.stats["distill_feature"] = feature.detach()
        return loss
