"""Mixed inputs: a Foundry checkpoint seen in a Hugging Face family's names, or a Hugging Face
folder seen in Foundry's, through the zoo's weight-name tables (foundry/zoo/family.py), so that
every input of a merge has the output's layout.

    model = in_layout_of(model, base)   # itself when the kinds agree; else a view, read lazily

Fused tensors are cut or joined on the fly: Foundry's kv_proj is HF's k_proj and v_proj stacked
(each HF half reads the fused tensor and keeps its part), GPT-2's Conv1D weights are transposed.
A model the family cannot express (e.g. MoE, ALiBi) is refused with the zoo's reason.
"""
from __future__ import annotations

import torch

from foundry.errors import UserError
from foundry.merge.sources import Model, split_layers


class View(Model):
    """What both views share: the inner model's tokenizer and per-layer settings."""

    @property
    def tokenizer(self):
        return self.inner.tokenizer

    def layer_settings(self, index: int) -> dict:
        return self.inner.layer_settings(index)


class FoundryAsHF(View):
    kind = "hf"

    def __init__(self, model, family):
        from foundry.zoo.family import hf_specs
        from foundry.zoo.families import misfit
        reason = misfit(family, model.model_cfg)
        if reason:
            raise UserError(f"{model.ref}: cannot be merged into a {family.name} model: {reason}")
        m = model.model_cfg
        self.inner, self.family, self.model_cfg = model, family, m
        foundry_specs = {n: model.spec(n) for n in model.names + ["lm_head.weight"] if model.has(n)}
        self.rule_of = {}
        for rule, hf, foundry in family.rules(m.n_layer, m.tie_embeddings):
            self.rule_of.update({name: (rule, i, foundry, len(hf)) for i, name in enumerate(hf)})
        specs = {n: (d, tuple(s)) for n, d, s in hf_specs(family, m.n_layer, m.tie_embeddings, foundry_specs)}
        layer_prefix = next(r.hf[0].split("{}")[0] for r in family.weights if "{}" in r.hf[0])
        pre, layers, post = split_layers(list(specs), layer_prefix)
        super().__init__(model.ref, model.path, pre + [n for layer in layers for n in layer] + post, specs,
                         self._read, layer_prefix, model.files)
        self.vocab_names = [n for n, (_, _, foundry, _) in self.rule_of.items()
                            if foundry[0] in ("wte.weight", "lm_head.weight")]

    def _read(self, name: str) -> torch.Tensor:
        rule, index, foundry, parts = self.rule_of[name]
        whole = torch.cat([self.inner.get(n) for n in foundry], dim=0) if len(foundry) > 1 else self.inner.get(foundry[0])
        part = whole.chunk(parts, dim=0)[index] if parts > 1 else whole
        return part.t().contiguous() if rule.transpose and part.dim() == 2 else part


class HFAsFoundry(View):
    kind = "foundry"

    def __init__(self, model):
        from foundry.zoo.hf import model_specs
        m = model.model_cfg
        self.inner, self.model_cfg = model, m
        shapes = model_specs(m)
        self.rule_of = {}
        for rule, hf, foundry in model.family.rules(m.n_layer, m.tie_embeddings):
            self.rule_of.update({name: (rule, i, hf, [shapes[f][0] for f in foundry]) for i, name in enumerate(foundry)})
        specs = {n: (model.spec(self.rule_of[n][2][0])[0], tuple(shape)) for n, shape in shapes.items()}
        if m.tie_embeddings:
            specs["lm_head.weight"] = specs["wte.weight"]
            self.rule_of["lm_head.weight"] = self.rule_of["wte.weight"]
        super().__init__(model.ref, model.path, list(shapes), specs, self._read, "blocks.", model.files)
        self.vocab_names = ["wte.weight"] + ([] if m.tie_embeddings else ["lm_head.weight"])

    def _read(self, name: str) -> torch.Tensor:
        rule, index, hf, sizes = self.rule_of[name]
        parts = [self.inner.get(n) for n in hf]
        parts = [p.t().contiguous() if rule.transpose and p.dim() == 2 else p for p in parts]
        whole = torch.cat(parts, dim=0) if len(parts) > 1 else parts[0]
        return torch.split(whole, sizes, dim=0)[index] if len(sizes) > 1 else whole

    @property
    def cfg(self):
        from foundry import catalog
        return catalog.from_dict({"model": vars(self.model_cfg), "budget": {"steps": 1}})


def in_layout_of(model, base):
    """`model` as tensors named like `base`'s (itself when both are of one kind)."""
    if model.kind == base.kind:
        return model
    if base.kind == "hf":
        return FoundryAsHF(model, base.family)
    return HFAsFoundry(model)
