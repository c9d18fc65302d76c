"""`tokenizer_source`: which tokenizer the merged model gets, and the token-indexed tensors
(embedding, untied head) of every input re-ordered to its vocabulary before merging.

    alignment = align_vocabularies(recipe, models)     # None when nothing needs re-ordering
    alignment.tokenizer, alignment.rows                # the output's tokenizer and vocabulary rows
    inputs = alignment.align(name, [(model, tensor), ...])

tokenizer_source: (absent) the base model's tokenizer, embeddings merged row by row as stored
(mergekit's default; a warning says so when the vocabularies differ); `base` or a model: that
tokenizer, each input's rows looked up by token; `union`: every token of every model (char and
byte tokenizers only: the kinds whose union is itself a tokenizer). A token some inputs lack takes,
for those inputs, the base's row if the base has it, else the mean of the rows of the inputs that
have it (one input: its row), else zeros (as mergekit fills them). Rows past the tokenizer's
vocabulary (padding) come from the tokenizer source's model.
"""
from __future__ import annotations

import torch

from foundry.errors import UserError


def vocabulary(tokenizer) -> dict[str, int]:
    hf = tokenizer.to_hf()
    out = {}
    for i in range(hf.vocab_size):
        token = hf.id_to_token(i)
        if token is not None:
            out.setdefault(token, i)
    return out


class Alignment:
    def __init__(self, tokenizer, tokens: list[str], rows: int, models: dict, base, source, names: list[str]):
        self.tokenizer, self.rows, self.names, self.base, self.source = tokenizer, rows, set(names), base, source
        self.maps = {}                          # model ref -> LongTensor (rows,): source row or -1
        for ref, model in models.items():
            vocab = vocabulary(model.tokenizer)
            limit = model.spec(names[0])[1][0]
            rows_of = [vocab.get(t, -1) for t in tokens] + [-1] * (rows - len(tokens))
            if model is source:
                rows_of[len(tokens):] = range(len(tokens), rows)
            self.maps[ref] = torch.tensor([r if r < limit else -1 for r in rows_of], dtype=torch.long)

    def align(self, name: str, inputs: list) -> list[torch.Tensor]:
        """Each (model, tensor (V_model, C)) as (rows, C) in the output vocabulary's order."""
        maps = [self.maps[model.ref] for model, _ in inputs]
        tensors = [t for _, t in inputs]
        gathered = [t[m.clamp(min=0)] * (m >= 0).unsqueeze(1).to(t.dtype) for t, m in zip(tensors, maps)]
        present = torch.stack([m >= 0 for m in maps])                    # (inputs, rows)
        if present.all():
            return gathered
        fill = torch.zeros_like(gathered[0])
        counts = present.sum(dim=0)
        for g, p in zip(gathered, present):
            fill += g * p.unsqueeze(1).to(g.dtype)
        fill /= counts.clamp(min=1).unsqueeze(1).to(fill.dtype)         # the mean of those that have it
        refs = [model.ref for model, _ in inputs]
        if self.base is not None and self.base.ref in refs:
            i = refs.index(self.base.ref)
            fill = torch.where(present[i].unsqueeze(1), gathered[i], fill)  # the base's row first
        return [torch.where(p.unsqueeze(1), g, fill) for g, p in zip(gathered, present)]


def align_vocabularies(recipe, models: dict, base, named=None):
    """(tokenizer, tokenizer's model or None, Alignment or None) for a recipe merging `models` into
    the format of `base`; `named` is the model tokenizer_source names, when it names one."""
    source_name = recipe.tokenizer_source
    tokenizers = {ref: m.tokenizer for ref, m in models.items()}
    missing = [ref for ref, t in tokenizers.items() if t is None]      # HF folders without tokenizer.json
    if missing and source_name is not None:
        raise UserError(f"{missing[0]}: no tokenizer.json; tokenizer_source: {source_name} needs every model's tokenizer")
    vocabs = {ref: vocabulary(t) for ref, t in tokenizers.items() if t is not None}
    differ = len({tuple(v.items()) for v in vocabs.values()}) > 1
    if source_name is None:                 # the base's tokenizer (or none: the output has none either)
        if differ:
            recipe.warnings.append("the models' vocabularies differ and no tokenizer_source is set: embeddings are "
                                   "merged row by row as stored; set tokenizer_source: base to align them by token")
        return tokenizers[base.ref], base, None
    source = base if source_name == "base" else named
    if source_name == "union":
        kinds = {t.name for t in tokenizers.values()}
        if differ and (len(kinds) > 1 or not kinds <= {"char", "byte"} or base.kind != "foundry"):
            raise UserError(f"tokenizer_source: union works for Foundry char or byte tokenizers only (these are "
                            f"{', '.join(sorted(kinds))}); name a model or base instead")
        from foundry.data.tokenizer import CharTokenizer
        tokenizer = tokenizers[base.ref]
        if tokenizer.name == "char":
            tokenizer = CharTokenizer("".join(t.chars for t in tokenizers.values()))
    else:
        if source.kind != base.kind:
            raise UserError(f"tokenizer_source: {source_name} is a {source.kind} model and the output a {base.kind} one")
        tokenizer = source.tokenizer
    target = vocabulary(tokenizer)
    tokens = sorted(target, key=target.get)
    names = base.vocab_names
    rows = source.spec(names[0])[1][0] if source_name != "union" else len(tokens)
    if all(vocabs[ref] == target and m.spec(names[0])[1][0] == rows for ref, m in models.items()):
        return tokenizer, (None if source_name == "union" else source), None
    alignment = Alignment(tokenizer, tokens, rows, models, models.get(recipe.base_model),
                          None if source_name == "union" else source, names)
    return tokenizer, (None if source_name == "union" else source), alignment
