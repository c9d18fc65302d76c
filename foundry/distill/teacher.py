"""The frozen teacher: a Foundry checkpoint loaded once on its own device and dtype, never trained.

    teacher = Teacher(cfg.train.distill.teacher, cfg)            # teacher_device, teacher_dtype
    teacher.check(student_tokenizer, cfg)                        # same tokenizer, enough context
    logits, hidden = teacher(x, layers=[-1])                     # (B, T, V) fp32 on the teacher's device
    index, logp, tail = top_k(logits, k)                         # (B, T, k) x2, (B, T): the soft targets

The teacher is a run folder or checkpoint (models imported from Hugging Face by the zoo are such
checkpoints; a LoRA run is merged). It runs in eval mode, with requires_grad off and under
torch.no_grad(): its outputs carry no autograd graph and training leaves its weights bitwise as
loaded. teacher_device "" puts it on the student's device; "cpu" or "cuda:1" elsewhere (its outputs
are moved to the student: only the top k when top_k > 0). teacher_dtype auto follows train.dtype
(its autocast: bf16 on CUDA and on CPUs with bf16 units); bf16 stores its weights in bf16 (half the memory); fp32 never
autocasts.
"""
from __future__ import annotations

import contextlib

import torch

from foundry.errors import UserError
from foundry.hardware import autocast, pick_device


def top_k(logits, k: int):
    """(..., V) logits -> the top k token ids and log-probabilities (descending) and the log of the
    remaining probability mass (-inf when k = V), all fp32 except the ids."""
    logp = torch.log_softmax(logits.float(), dim=-1)
    values, index = logp.topk(k, dim=-1)
    tail = logp.scatter(-1, index, float("-inf")).logsumexp(dim=-1)
    return index, values, tail


class Teacher:
    def __init__(self, path: str, cfg):
        from foundry.weights.checkpoint import load_model
        from foundry.weights.lora import merge_lora
        d = cfg.train.distill
        self.path, self.run_cfg = path, cfg
        self.device = pick_device(d.teacher_device or cfg.train.device)
        with torch.random.fork_rng(devices=[]):  # building it must not move the student's initialisation
            model, self.tokenizer, self.cfg = load_model(path, "cpu")
        model = merge_lora(model)
        if d.teacher_dtype == "bf16":
            model = model.to(torch.bfloat16)
        self.dtype = d.teacher_dtype
        self.model = model.to(self.device).eval().requires_grad_(False)
        self.hidden, self._hooks = {}, {}

    def check(self, tokenizer, cfg) -> None:
        """A clear error when the teacher cannot teach this student."""
        where = f"train.distill.teacher ({self.path})"
        if self.tokenizer.to_json() != tokenizer.to_json():
            raise UserError(f"{where}: its tokenizer ({self.tokenizer.name}, {self.tokenizer.vocab_size} symbols) "
                            f"differs from the student's ({tokenizer.name}, {tokenizer.vocab_size}); "
                            "teacher and student must share one vocabulary")
        if self.cfg.model.block_size < cfg.model.block_size:
            raise UserError(f"{where}: its block_size {self.cfg.model.block_size} is shorter than the student's "
                            f"model.block_size={cfg.model.block_size}")

    def check_vocab(self, vocab_size: int) -> None:
        if self.cfg.model.vocab_size != vocab_size:
            raise UserError(f"train.distill.teacher ({self.path}): model.vocab_size {self.cfg.model.vocab_size} "
                            f"differs from the student's {vocab_size}")

    def watch(self, layers) -> list[int]:
        """Keep the output of these blocks (negative = from the end) at each call; returns them resolved."""
        n = len(self.model.blocks)
        resolved = []
        for layer in layers:
            if not -n <= layer < n:
                raise UserError(f"train.distill.features.pairs: teacher layer {layer} is out of range "
                                f"for its n_layer={n}")
            index = layer % n
            if index not in self._hooks:
                def keep(module, args, output, index=index):
                    self.hidden[index] = output
                self._hooks[index] = self.model.blocks[index].register_forward_hook(keep)
            resolved.append(index)
        return resolved

    def precision(self):
        if self.dtype == "auto":
            return autocast(self.device, self.run_cfg)
        return contextlib.nullcontext()

    @torch.no_grad()
    def __call__(self, x, doc_ids=None):
        """x (B, T) token ids (doc_ids: packed rows) -> fp32 logits (B, T, V) on the teacher's device;
        hidden states in self.hidden."""
        x = x.to(self.device, non_blocking=True)
        with self.precision():
            if doc_ids is None:
                return self.model(x).float()
            return self.model(x, doc_ids=doc_ids.to(self.device, non_blocking=True)).float()
