"""From a checked recipe and the opened models to the list of output tensors, each with its
inputs and resolved parameters, plus the output's depth and per-layer sources. Reads no tensor.

    plan = make_plan(recipe, models)            # models: {reference: foundry.merge.sources.Model}
    plan.tensors[0].name, .inputs, .shared, .per_model, .dtype, .shape
    plan.layer_sources                          # [(model, source layer)] for each output layer

As in mergekit: `models` is one slice over every model's whole depth (the base added when it is
not listed); each slice merges its sources layer by layer, the gradient position t running from
0 at its first layer to 1 at its last (1 for a one-layer slice); tensors before the layers
(embeddings) come from the first slice's sources, those after (final norm, head) from the last's,
both at t = 0. Models of different shapes or architectures are refused, naming the tensor or key.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

from foundry.errors import UserError
from foundry.merge.recipe import DTYPES, Slice, Source, resolve

# model config keys that may differ between merged models (they change no weight's meaning)
FREE_KEYS = {"n_layer", "layers", "dropout", "gradient_checkpointing", "block_size", "tie_embeddings", "vocab_size",
             "preset", "mlp_ratio"}


@dataclass
class TensorPlan:
    name: str                       # in the output
    inputs: list                    # [(Model, input tensor name)], the base first when the method has one
    has_base: bool
    shared: dict
    per_model: list                 # resolved parameters of each non-base input
    dtype: torch.dtype              # of the output tensor
    shape: tuple
    input_dtype: torch.dtype | None = None   # recipe `dtype`: inputs converted before merging


@dataclass
class Plan:
    tensors: list[TensorPlan]
    base: object                    # the Model whose format, config and tokenizer the output takes
    layer_sources: list = field(default_factory=list)   # [(Model, layer index)] per output layer
    tokenizer: object = None        # the output's (foundry.merge.vocab.align_vocabularies)
    tokenizer_model: object = None  # the Model whose tokenizer files an HF output copies (None: the base)
    alignment: object = None        # re-ordering of token-indexed tensors, or None

    @property
    def n_layer(self) -> int:
        return len(self.layer_sources)


def as_slices(recipe, models: dict) -> list[Slice]:
    if recipe.slices:
        return recipe.slices
    sources = [Source(m.model, m.parameters, m.where, (0, models[m.model].n_layer)) for m in recipe.models]
    if recipe.base_model and recipe.base_model not in [s.model for s in sources]:
        sources.append(Source(recipe.base_model, {}, "base_model", (0, models[recipe.base_model].n_layer)))
    depths = {s.layer_range[1] for s in sources}
    if len(depths) > 1 and not recipe.method.stacks_layers:
        raise UserError(f"models have different depths ({', '.join(f'{s.model}: {s.layer_range[1]}' for s in sources)}); "
                        "stack layers with passthrough slices instead")
    return [Slice(sources, {}, "models")]


def architecture(model) -> dict:
    """The model config's values that give the weights their meaning, implicit defaults made explicit."""
    from foundry.zoo.families import resolved
    return {k: v for k, v in vars(resolved(model.model_cfg)).items() if k not in FREE_KEYS}


def check_architectures(models: dict) -> None:
    first = next(iter(models.values()))
    ours = architecture(first)
    for model in models.values():
        theirs = architecture(model)
        for key in ours:                   # field order: n_embd is named before the widths it implies
            if ours[key] != theirs[key]:
                raise UserError(f"{model.ref} and {first.ref} differ in model.{key} ({theirs[key]!r} vs {ours[key]!r}); "
                                "merging needs one architecture")


def make_plan(recipe, models: dict, alignment=None) -> Plan:
    """alignment (foundry.merge.vocab): token-indexed tensors get its rows, whatever the inputs' sizes."""
    method = recipe.method
    check_architectures(models)
    slices = as_slices(recipe, models)
    base = models[recipe.base_model] if recipe.base_model else models[slices[0].sources[0].model]
    tensors, layer_sources = [], []

    def add(out_name: str, slice_: Slice, pairs, t: float):
        base_ref = (slice_.base_model or recipe.base_model) if method.base else None
        if base_ref:
            pairs = sorted(pairs, key=lambda p: p[0].model != base_ref)     # the base first, then recipe order
        others = [(s, n) for s, n in pairs if s.model != base_ref]
        for source, name in pairs:
            model = models[source.model]
            if not model.has(name):
                raise UserError(f"{source.model}: has no tensor {name} (needed for {out_name})")
        shapes = {tuple(models[s.model].spec(n)[1]) for s, n in pairs}
        if alignment is not None and out_name in alignment.names:
            shapes = {(alignment.rows, *shape[1:]) for shape in shapes}
        if len(shapes) > 1:
            raise UserError(f"{out_name}: the models' shapes differ ({', '.join(f'{s.model}: {tuple(models[s.model].spec(n)[1])}' for s, n in pairs)})")
        where = f"{recipe.where or 'recipe'}: {out_name}"
        shared = {k: resolve(k, p, [slice_.parameters, recipe.parameters], out_name, t, where)
                  for k, p in method.shared.items()}
        per_model = [{k: resolve(k, p, [s.parameters, slice_.parameters, recipe.parameters], n, t, f"{where} ({s.model})")
                      for k, p in method.per_model.items()} for s, n in others]
        dtypes = [models[s.model].spec(n)[0] for s, n in pairs]
        promoted = dtypes[0]
        for d in dtypes[1:]:
            promoted = torch.promote_types(promoted, d)
        input_dtype = DTYPES[recipe.dtype] if recipe.dtype and promoted.is_floating_point else None
        out_dtype = DTYPES.get(recipe.out_dtype or "") or input_dtype or promoted
        if not promoted.is_floating_point:
            out_dtype = promoted
        tensors.append(TensorPlan(out_name, [(models[s.model], n) for s, n in pairs], bool(base_ref), shared,
                                  per_model, out_dtype, shapes.pop(), input_dtype))

    for name in base.pre:
        add(name, slices[0], [(s, name) for s in slices[0].sources], 0.0)
    for slice_ in slices:
        length = slice_.sources[0].layer_range[1] - slice_.sources[0].layer_range[0]
        for s in slice_.sources:
            if s.layer_range[1] > models[s.model].n_layer:
                raise UserError(f"{s.where}.layer_range: {list(s.layer_range)} is beyond {s.model}'s {models[s.model].n_layer} layers")
        for offset in range(length):
            t = offset / (length - 1) if length > 1 else 1.0
            out_layer = len(layer_sources)
            first = slice_.sources[0]
            first_model = models[first.model]
            templates = [first_model.template(n) for n in first_model.layers[first.layer_range[0] + offset]]
            for s in slice_.sources[1:]:
                model, layer = models[s.model], s.layer_range[0] + offset
                theirs = [model.template(n) for n in model.layers[layer]]
                here = f"{s.model} layer {layer} and {first.model} layer {first.layer_range[0] + offset}"
                if sorted(theirs) != sorted(templates):
                    odd = sorted(set(theirs) ^ set(templates))[0].format(layer)
                    raise UserError(f"{here} hold different tensors (e.g. {odd})")
                ours, other = first_model.layer_settings(first.layer_range[0] + offset), model.layer_settings(layer)
                if ours != other:
                    key = next(k for k in ours if ours[k] != other[k])
                    raise UserError(f"{here} differ in {key} ({other[key]!r} vs {ours[key]!r}); they cannot be merged")
            for template in templates:
                add(template.format(out_layer), slice_,
                    [(s, template.format(s.layer_range[0] + offset)) for s in slice_.sources], t)
            layer_sources.append((first_model, first.layer_range[0] + offset))
    for name in base.post:
        add(name, slices[-1], [(s, name) for s in slices[-1].sources], 0.0)
    return Plan(tensors, base, layer_sources)
