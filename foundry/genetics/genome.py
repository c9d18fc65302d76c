"""A merge genome: per-layer merge parameters (weights, densities, SLERP t, ...) of one merge method
over given models, as a vector in [0, 1]^d that maps to a mergekit-format recipe; and the in-memory
merge that turns such a recipe into a model, with no files written.

    spec = parse(data["merge"], "recipe.yaml: merge")    # MergeSpec: genome + search settings
    genome = spec.genome
    genome.dimension, genome.initial()                   # d, the start point (each knob's init)
    recipe = genome.recipe(x)                            # {"merge_method": ..., "models": [...], ...}
    model, tokenizer, cfg = build_model(recipe)          # merged in memory (foundry.merge), eval mode

The `merge:` section of a `foundry genetics` recipe:

    merge:
      method: ties                       # a foundry.merge method
      base_model: runs/base              # when the method needs one
      models: [runs/ft_shakespeare, runs/ft_python]
      parameters:                        # the searched knobs
        weight: {low: 0.0, high: 1.0}    # per model (the method says which are per model / shared)
        density: {low: 0.1, high: 1.0, layers: 2, filters: [attn, mlp], init: 0.5}
      fixed: {normalize: true}           # passed to the recipe's top-level parameters as written
      dtype: float32                     # the recipe's dtype (optional)
      population: 8                      # CMA-ES population (default: cmaes' 4 + 3 ln d)
      generations: 10
      sigma: 0.25                        # initial step size, in the unit cube
      fitness: {name: val_bpb}           # foundry.genetics.fitness
      seed: 0

A knob's value is a gradient list of `layers` points (default: one per layer of the models; 1 gives
a scalar), interpolated across the layers as mergekit does; with `filters` it is a list of
`{filter: F, value: gradient}` for each F and one without a filter for every other tensor, so it
takes (len(filters) + 1) * layers numbers (tensors outside the layers, the embeddings and the head,
take a gradient's first point, as in mergekit: `filters: [wte, lm_head]` gives them their own).
Each number x in [0, 1] maps to low + x * (high - low); `init` (default: the middle of the bounds)
is where the search starts.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from foundry.errors import UserError

# natural search ranges of the methods' numeric parameters (others need low and high)
DEFAULT_BOUNDS = {"weight": (0.0, 1.0), "density": (0.05, 1.0), "t": (0.0, 1.0), "lambda": (0.0, 2.0),
                  "epsilon": (0.0, 0.5), "gamma": (0.0, 0.2), "scale": (0.0, 2.0)}
KNOB_KEYS = ("low", "high", "layers", "filters", "init")
MERGE_KEYS = ("method", "base_model", "models", "parameters", "fixed", "dtype", "population", "generations",
              "sigma", "fitness", "seed")


def _fail(where: str, message: str):
    raise UserError(f"{where}: {message}")


@dataclass(frozen=True)
class Knob:
    """One searched parameter of one model (or shared when model is None)."""
    name: str
    model: str | None
    low: float
    high: float
    layers: int
    filters: tuple = ()
    init: float | None = None

    @property
    def size(self) -> int:
        return (len(self.filters) + 1) * self.layers

    def value(self, x: list[float]):
        """The recipe setting for this knob from its slice of the unit vector."""
        values = [self.low + min(1.0, max(0.0, float(v))) * (self.high - self.low) for v in x]
        gradients = [values[i * self.layers:(i + 1) * self.layers] for i in range(len(self.filters) + 1)]
        settings = [g[0] if self.layers == 1 else g for g in gradients]
        if not self.filters:
            return settings[0]
        return [{"filter": f, "value": v} for f, v in zip(self.filters, settings)] + [{"value": settings[-1]}]

    def start(self) -> float:
        init = (self.low + self.high) / 2 if self.init is None else self.init
        return (init - self.low) / (self.high - self.low)


@dataclass
class MergeGenome:
    method: str
    models: list[str]
    base_model: str | None
    knobs: list[Knob]
    fixed: dict = field(default_factory=dict)
    dtype: str | None = None

    @property
    def dimension(self) -> int:
        return sum(k.size for k in self.knobs)

    def initial(self) -> list[float]:
        return [k.start() for k in self.knobs for _ in range(k.size)]

    def recipe(self, x) -> dict:
        """The mergekit-format recipe dict for the unit vector x (values outside [0, 1] are clipped)."""
        x = [float(v) for v in x]
        if len(x) != self.dimension:
            raise UserError(f"merge genome: expected {self.dimension} numbers, got {len(x)}")
        per_model = {m: {} for m in self.models}
        shared, offset = dict(self.fixed), 0
        for knob in self.knobs:
            value = knob.value(x[offset:offset + knob.size])
            offset += knob.size
            (per_model[knob.model] if knob.model else shared)[knob.name] = value
        recipe = {"merge_method": self.method}
        if self.base_model:
            recipe["base_model"] = self.base_model
        recipe["models"] = [{"model": m, "parameters": per_model[m]} for m in self.models]
        if shared:
            recipe["parameters"] = shared
        if self.dtype:
            recipe["dtype"] = self.dtype
        return recipe


@dataclass
class MergeSpec:
    """A `merge:` section: the genome and how CMA-ES searches it."""
    genome: MergeGenome
    fitness: dict
    generations: int
    population: int | None = None
    sigma: float = 0.25
    seed: int = 0
    data: dict = field(default_factory=dict)     # the section as written


def _number(value, where: str) -> float:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        _fail(where, f"expected a number, got {value!r}")
    return float(value)


def _int(data: dict, key: str, where: str, default, low: int = 1):
    value = data.get(key, default)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < low:
        _fail(f"{where}.{key}", f"expected an integer >= {low}, got {value!r}")
    return value


def _knob(name: str, data, method, models: list[str], depth: int, where: str) -> list[Knob]:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        _fail(where, f"expected a mapping with low/high/layers/filters/init, got {data!r}")
    for key in data:
        if key not in KNOB_KEYS:
            _fail(f"{where}.{key}", f"unknown key (valid: {', '.join(KNOB_KEYS)})")
    spec = method.per_model.get(name) or method.shared.get(name)
    if spec is None:
        own = ", ".join({**method.shared, **method.per_model}) or "none"
        _fail(where, f"not a parameter of {method.name} (its parameters: {own})")
    if spec.type is not float:
        _fail(where, f"a {spec.type.__name__} parameter cannot be searched; set it under fixed")
    low, high = DEFAULT_BOUNDS.get(name, (None, None))
    low = _number(data["low"], f"{where}.low") if "low" in data else low
    high = _number(data["high"], f"{where}.high") if "high" in data else high
    if low is None or high is None:
        _fail(where, f"{name} has no default range: give low and high")
    if not low < high:
        _fail(where, f"expected low < high, got {low} and {high}")
    layers = _int(data, "layers", where, depth)
    filters = data.get("filters", [])
    if not isinstance(filters, list) or not all(isinstance(f, str) and f for f in filters):
        _fail(f"{where}.filters", f"expected a list of tensor-name substrings, got {filters!r}")
    init = _number(data["init"], f"{where}.init") if "init" in data else None
    if init is not None and not low <= init <= high:
        _fail(f"{where}.init", f"{init} is outside [{low}, {high}]")
    owners = models if name in method.per_model else [None]
    return [Knob(name, owner, low, high, layers, tuple(filters), init) for owner in owners]


def _depth(ref: str, where: str) -> int:
    from foundry.merge.sources import open_model
    try:
        return open_model(ref).n_layer
    except UserError as e:
        raise UserError(f"{where}: {e}") from None


def parse(data, where: str = "merge") -> MergeSpec:
    """A checked MergeSpec from a recipe's `merge:` mapping; UserError names `where` and the key."""
    from foundry import merge as merging
    from foundry.genetics import fitness
    from foundry.merge.recipe import parse as parse_recipe
    if not isinstance(data, dict):
        _fail(where, f"expected a mapping, got {data!r}")
    for key in data:
        if key not in MERGE_KEYS:
            _fail(f"{where}.{key}", f"unknown key (valid: {', '.join(MERGE_KEYS)})")
    name = data.get("method")
    if name not in merging.METHODS:
        _fail(f"{where}.method", f"{name!r} is not a merge method (valid: {', '.join(merging.METHODS)})")
    method = merging.METHODS[name]
    models = data.get("models")
    if not isinstance(models, list) or not models or not all(isinstance(m, str) and m for m in models):
        _fail(f"{where}.models", f"expected a list of model folders, got {models!r}")
    if len(set(models)) != len(models):
        _fail(f"{where}.models", "a model is listed twice")
    base = data.get("base_model")
    params = data.get("parameters")
    if not isinstance(params, dict) or not params:
        _fail(f"{where}.parameters", f"expected a mapping of parameter -> bounds to search, got {params!r}")
    depth = _depth(models[0], f"{where}.models[0]")
    knobs = [k for n, v in params.items() for k in _knob(n, v, method, models, depth, f"{where}.parameters.{n}")]
    fixed = data.get("fixed") or {}
    if not isinstance(fixed, dict):
        _fail(f"{where}.fixed", f"expected a mapping of parameter -> value, got {fixed!r}")
    genome = MergeGenome(name, list(models), base, knobs, dict(fixed), data.get("dtype"))
    parse_recipe(genome.recipe(genome.initial()), where)     # the recipe format's own checks
    fitness.check(data.get("fitness"), f"{where}.fitness")
    sigma = _number(data.get("sigma", 0.25), f"{where}.sigma")
    if not 0 < sigma <= 1:
        _fail(f"{where}.sigma", f"expected a step size in (0, 1] (the unit cube), got {sigma}")
    population = _int(data, "population", where, None, low=2)
    return MergeSpec(genome, data["fitness"], _int(data, "generations", where, 10), population, sigma,
                     _int(data, "seed", where, 0, low=0), dict(data))


def build_model(recipe: dict, device: str = "cpu"):
    """(model in eval mode, tokenizer, cfg) of a recipe merged in memory; model.tokenizer is set."""
    import torch

    from foundry.merge import merge_tensor, prepare
    from foundry.merge.output import foundry_config
    from foundry.model.shapes import meta_model
    recipe, _, plan = prepare(recipe)
    if plan.base.kind != "foundry":
        raise UserError("merge genome: in-memory merging builds Foundry models; import Hugging Face folders first")
    cfg = foundry_config(plan, "merged")
    state = {t.name: merge_tensor(t, recipe.method, recipe.seed, "cpu", plan.alignment) for t in plan.tensors}
    model = meta_model(cfg.model).to_empty(device="cpu")
    if cfg.model.tie_embeddings:        # to_empty gives every parameter its own storage: tie them again
        model.lm_head.weight = model.wte.weight
        state.setdefault("lm_head.weight", state["wte.weight"])
    with torch.no_grad():
        model.load_state_dict(state, strict=True)
    model = model.to(device).eval()
    model.tokenizer = plan.tokenizer
    return model, plan.tokenizer, cfg
