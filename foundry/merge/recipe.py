"""Merge recipes in mergekit's YAML format: parsed, checked, and their parameters resolved per tensor.

    recipe = load("merge.yaml")                 # or parse({...}, "where")
    recipe.method, recipe.referenced_models()
    evaluate(setting, "blocks.3.attn.q_proj.weight", t=0.5)   # a parameter's value for one tensor

    merge_method: ties                           # a name in foundry.merge.METHODS
    base_model: runs/base                        # a Foundry run/checkpoint or a Hugging Face folder
    models:                                      # or `slices:` (below); exactly one of the two
      - model: runs/shakespeare
        parameters: {weight: 0.5, density: 0.5}
      - model: runs/python
        parameters: {weight: [0.2, 0.8], density: 0.5}     # a gradient from the first layer to the last
    parameters: {normalize: true}                # every model's default and the shared parameters
    dtype: float32                               # inputs converted to it (default: their own)
    out_dtype: bfloat16                          # output tensors (default: dtype, else the inputs')
    tokenizer_source: base                       # base | union | a model (default: the base's tokenizer)
    seed: 0                                      # Foundry's: seeds random methods (DARE, DELLA)

    slices:                                      # layer ranges [start, end): passthrough stacks them,
      - sources:                                 # other methods merge sources of equal length
          - {model: runs/a, layer_range: [0, 4]}
          - {model: runs/b, layer_range: [2, 6]}

A parameter value is a scalar, a list (a gradient: interpolated across each slice's layers, the
first value at its first layer; tensors outside the layers take the first value), or a list of
`{filter: SUBSTRING, value: ...}` (the first whose filter occurs in the tensor's name wins; no
filter = all). Per-model parameters are looked up in the model's entry, then the slice's, then the
top level; shared ones in the slice's, then the top level (mergekit's precedence).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field

import torch

from foundry.errors import UserError
from foundry.io import read_yaml_mapping
from foundry.merge.method import REQUIRED

TOP_KEYS = ("merge_method", "base_model", "models", "slices", "parameters", "dtype", "out_dtype",
            "tokenizer_source", "seed")
UNSUPPORTED = {"modules": "multi-module models (Foundry models have one module); use models or slices",
               "tokenizer": "the tokenizer section (token embedding overrides); use tokenizer_source",
               "chat_template": "chat templates (Foundry tokenizers carry none)",
               "residual_weight": "residual_weight (unused by mergekit's methods too)"}
DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16, "float64": torch.float64}
SCALARS = (bool, int, float, str)


@dataclass
class Source:
    model: str
    parameters: dict
    where: str                                 # e.g. "models[1]" or "slices[0].sources[1]"
    layer_range: tuple[int, int] | None = None


@dataclass
class Slice:
    sources: list[Source]
    parameters: dict
    where: str
    base_model: str | None = None


@dataclass
class Recipe:
    merge_method: str
    where: str                                 # the file (or "recipe") named in errors
    base_model: str | None = None
    models: list[Source] | None = None
    slices: list[Slice] | None = None
    parameters: dict = field(default_factory=dict)
    dtype: str | None = None
    out_dtype: str | None = None
    tokenizer_source: str | None = None
    seed: int = 0
    data: dict = field(default_factory=dict)   # the recipe as written (saved with the output)
    warnings: list[str] = field(default_factory=list)

    @property
    def method(self):
        from foundry.merge import METHODS
        return METHODS[self.merge_method]

    def referenced_models(self) -> list[str]:
        """Every model named, base first, each once, in recipe order."""
        names = [self.base_model] if self.base_model else []
        for source in self.models or [s for sl in self.slices for s in sl.sources]:
            names.append(source.model)
        names += [sl.base_model for sl in self.slices or [] if sl.base_model]
        return list(dict.fromkeys(names))


def _fail(where: str, message: str):
    raise UserError(f"{where}: {message}")


def _keys(data, allowed: tuple, where: str) -> dict:
    if not isinstance(data, dict):
        _fail(where, f"expected a mapping, got {data!r}")
    for key in data:
        if key in UNSUPPORTED:
            _fail(f"{where}.{key}" if where else key, f"not supported: {UNSUPPORTED[key]}")
        if key not in allowed:
            _fail(f"{where}.{key}" if where else str(key), f"unknown key (valid: {', '.join(allowed)})")
    return data


def _model(value, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        _fail(where, f"expected a model folder, got {value!r}")
    if "+" in value and not os.path.isdir(os.path.expandvars(value)):
        _fail(where, f"{value!r}: model+LoRA references are not supported; merge the adapter into the model first")
    return value


def _check_setting(value, spec, where: str) -> None:
    """A parameter setting's shape and, against the Param spec, its values' types."""
    if isinstance(value, dict):
        value = [value]
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        for i, cond in enumerate(value):
            _keys(cond, ("filter", "value"), f"{where}[{i}]")
            if "value" not in cond:
                _fail(f"{where}[{i}]", "a filtered setting needs a value")
            if cond.get("filter") is not None and not isinstance(cond["filter"], str):
                _fail(f"{where}[{i}].filter", f"expected a name substring, got {cond['filter']!r}")
            _check_setting(cond["value"], spec, f"{where}[{i}].value")
        return
    values = value if isinstance(value, list) else [value]
    if not values:
        _fail(where, "an empty list")
    for v in values:
        if v is None and spec.default is None:
            continue
        if not isinstance(v, SCALARS) or isinstance(v, dict):
            _fail(where, f"expected a scalar, a gradient list or filtered values, got {v!r}")
        coerce(v, spec, where)


def coerce(value, spec, where: str):
    """A scalar as the Param's type; UserError naming `where` when it is not one."""
    if spec.type is bool:
        if isinstance(value, bool):
            return value
    elif spec.type is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)      # YAML 1.1 reads 1e-3 as a string
            except ValueError:
                pass
    elif spec.type is str and isinstance(value, str):
        if not spec.choices or value in spec.choices:
            return value
        _fail(where, f"{value!r} is not one of {', '.join(spec.choices)}")
    _fail(where, f"expected {spec.type.__name__}, got {value!r}")


def _parameters(data, method, scope: str, where: str, warnings: list) -> dict:
    """Check a `parameters` mapping: names a method knows; values of the right shape and type."""
    from foundry.merge import METHODS
    if data is None:
        return {}
    if not isinstance(data, dict):
        _fail(where, f"expected a mapping of parameter -> value, got {data!r}")
    known = {n: p for m in METHODS.values() for n, p in {**m.shared, **m.per_model}.items()}
    own = {**method.per_model, **(method.shared if scope != "model" else {})}
    for name, value in data.items():
        if name not in known:
            _fail(f"{where}.{name}", f"unknown parameter (those of {method.name}: {', '.join({**method.shared, **method.per_model}) or 'none'})")
        if name not in own:
            kind = "a shared parameter: set it in the top-level or slice parameters" if name in method.shared \
                else f"not a parameter of {method.name}"
            warnings.append(f"{where}.{name}: ignored ({kind})")
        _check_setting(value, own.get(name, known[name]), f"{where}.{name}")
    return dict(data)


def _source(data, method, where: str, warnings: list, in_slice: bool) -> Source:
    keys = ("model", "layer_range", "parameters") if in_slice else ("model", "parameters")
    _keys(data, keys, where)
    if "model" not in data:
        _fail(where, "missing key model")
    layer_range = None
    if in_slice:
        value = data.get("layer_range")
        if not (isinstance(value, list) and len(value) == 2 and all(isinstance(v, int) and not isinstance(v, bool)
                                                                     for v in value) and 0 <= value[0] < value[1]):
            _fail(f"{where}.layer_range", f"expected [start, end) with 0 <= start < end, got {value!r}")
        layer_range = (value[0], value[1])
    params = _parameters(data.get("parameters"), method, "model", f"{where}.parameters", warnings)
    return Source(_model(data["model"], f"{where}.model"), params, where, layer_range)


def _list(data, where: str) -> list:
    if not isinstance(data, list) or not data:
        _fail(where, f"expected a non-empty list, got {data!r}")
    return data


def parse(data, where: str = "recipe") -> Recipe:
    """A checked Recipe from a mapping (YAML as loaded); UserError names `where` and the key."""
    from foundry.merge import METHODS
    try:
        _keys(data, TOP_KEYS, "")
        return _parse(data, METHODS)
    except UserError as e:
        raise UserError(f"{where}: {e}") from None


def _parse(data: dict, methods) -> Recipe:
    name = data.get("merge_method")
    if name not in methods:
        _fail("merge_method", f"{name!r} is not a method (valid: {', '.join(methods)})" if name else "missing")
    method, warnings = methods[name], []
    if ("models" in data) == ("slices" in data):
        _fail("models", "give exactly one of models and slices")
    models = slices = None
    if "models" in data:
        models = [_source(m, method, f"models[{i}]", warnings, False) for i, m in enumerate(_list(data["models"], "models"))]
    else:
        slices = []
        for i, s in enumerate(_list(data["slices"], "slices")):
            where = f"slices[{i}]"
            _keys(s, ("sources", "base_model", "parameters"), where)
            sources = [_source(x, method, f"{where}.sources[{j}]", warnings, True)
                       for j, x in enumerate(_list(s.get("sources"), f"{where}.sources"))]
            lengths = {x.layer_range[1] - x.layer_range[0] for x in sources}
            if len(lengths) > 1:
                _fail(f"{where}.sources", f"the layer ranges differ in length ({sorted(lengths)}); a slice merges layer by layer")
            base = _model(s["base_model"], f"{where}.base_model") if s.get("base_model") is not None else None
            slices.append(Slice(sources, _parameters(s.get("parameters"), method, "slice", f"{where}.parameters", warnings),
                                where, base))
    for key in ("dtype", "out_dtype"):
        value = data.get(key)
        if value is not None and str(value).removeprefix("torch.") not in DTYPES:
            _fail(key, f"{value!r} is not a dtype (valid: {', '.join(DTYPES)})")
    seed = data.get("seed", 0)
    if not isinstance(seed, int) or isinstance(seed, bool):
        _fail("seed", f"expected an integer, got {seed!r}")
    tokenizer_source = data.get("tokenizer_source")
    if tokenizer_source is not None:
        _model(tokenizer_source, "tokenizer_source")
    recipe = Recipe(
        merge_method=name, where="", models=models, slices=slices, seed=seed,
        base_model=_model(data["base_model"], "base_model") if data.get("base_model") is not None else None,
        parameters=_parameters(data.get("parameters"), method, "top", "parameters", warnings),
        dtype=_dtype_name(data.get("dtype")), out_dtype=_dtype_name(data.get("out_dtype")),
        tokenizer_source=tokenizer_source, data=dict(data), warnings=warnings)
    _check_method(recipe, method)
    return recipe


def _dtype_name(value):
    return None if value is None else str(value).removeprefix("torch.")


def _check_method(recipe: Recipe, method) -> None:
    """The inputs each output tensor will get, against what the method needs (counted per slice)."""
    groups = [(recipe.models, recipe.base_model, "models")] if recipe.models else \
        [(s.sources, s.base_model or recipe.base_model, s.where) for s in recipe.slices]
    for sources, base, where in groups:
        names = [s.model for s in sources]
        if len(set(names)) != len(names) and not method.stacks_layers:
            _fail(where, f"a model is listed twice ({', '.join(sorted({n for n in names if names.count(n) > 1}))})")
        if method.base and not base:
            _fail("base_model", f"{method.name} needs a base_model")
        if base and recipe.models and base not in names:
            names.append(base)           # mergekit adds the base to the inputs
        elif base and recipe.slices and method.base and base not in names:
            _fail(where, f"base_model {base} is not one of the slice's sources")
        count = len(names)
        if count < method.min_models or (method.max_models and count > method.max_models):
            want = f"{method.min_models}" + ("" if method.max_models == method.min_models else
                                              f" to {method.max_models}" if method.max_models else " or more")
            _fail(where, f"{method.name} merges {want} models (base included), got {count}")


def load(path) -> Recipe:
    path = os.fspath(path)
    data = read_yaml_mapping(path)
    recipe = parse(data, path)
    recipe.where = path
    return recipe


# ---------------------------------------------------------------- per-tensor resolution
def evaluate(setting, tensor_name: str, t: float = 0.0):
    """A setting's raw value for one tensor at layer position t in [0, 1] (None: no filter matched)."""
    if isinstance(setting, dict):
        setting = [setting]
    if isinstance(setting, list) and setting and all(isinstance(v, dict) for v in setting):
        for cond in setting:
            pattern = cond.get("filter")
            if pattern is None or pattern == "*" or pattern in tensor_name:
                return evaluate(cond["value"], tensor_name, t)
        return None
    if not isinstance(setting, list):
        return setting
    numeric = [_number(v) for v in setting]
    if any(v is None for v in numeric):
        return setting[int(t * (len(setting) - 1))]      # booleans and strings: pick, not blend
    scaled = t * (len(numeric) - 1)
    low = int(scaled)
    high = min(len(numeric) - 1, low + 1)
    frac = scaled - low
    return (1 - frac) * numeric[low] + frac * numeric[high]


def _number(value):
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def resolve(name: str, spec, scopes, tensor_name: str, t: float, where: str):
    """A parameter's value from the first scope (a parameters dict or None) that gives one, else
    its default; UserError when it is required and nothing gives it."""
    for scope in scopes:
        if scope and name in scope:
            value = evaluate(scope[name], tensor_name, t)
            if value is not None:
                return coerce(value, spec, f"{where}: {name}")
    if spec.default is REQUIRED:
        _fail(where, f"missing parameter {name!r} (for {tensor_name})")
    return spec.default
