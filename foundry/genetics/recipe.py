"""The `foundry genetics` recipe: a genetic algorithm over weights, or a `merge:` genome (CMA-ES).

    recipe = load("ga.yaml")          # GARecipe, or genome.MergeSpec when the file has `merge:`
    recipe = from_dict(data, "ga.yaml")

    population: 8                     # individuals per generation
    generations: 10
    seed: 0
    elite: 1                          # the best e carried over unchanged (and not re-scored)
    selection: {name: tournament, k: 3}            # or {name: truncation, keep: 0.5}
    operators:                        # crossovers: the child is made by one of them with its rate
      - {name: slerp, rate: 0.6, t: 0.5, jitter: 0.2}    #   (else it is a copy of one parent);
      - {name: uniform, rate: 0.2}                       # mutations: each applied with its rate
      - {name: gaussian, rate: 0.8, sigma: 0.01, adapt: one_fifth}
    fitness: {name: val_bpb}          # foundry.genetics.fitness (search split; heldout at the end)
    init: {from: runs/base, noise: 0.01}     # one model, copies with noise;
                                             # from: [runs/a, runs/b]: several checkpoints;
                                             # campaign: experiments/tiny (its trials), top: 8

Every key is checked; a bad one is a UserError naming the file and key (the CLI's one line, exit 2).
The operators and selections come from operators.OPERATORS / SELECTIONS (unknown names list the
valid ones); their parameters are checked against the registry's ranges.
"""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field

from foundry.errors import UserError
from foundry.genetics.operators import OPERATORS, SELECTIONS, Param

GA_KEYS = ("population", "generations", "seed", "elite", "selection", "operators", "fitness", "init")
INIT_KEYS = ("from", "campaign", "noise", "top")
DEFAULT_OPERATORS = [{"name": "slerp", "rate": 0.5}, {"name": "gaussian", "rate": 1.0}]
DEFAULT_SELECTION = {"name": "tournament"}
NOISE = Param(0.01, 0.0, 10.0)     # init noise, relative to each tensor's rms


@dataclass
class GARecipe:
    fitness: dict
    init: dict
    population: int = 8
    generations: int = 10
    seed: int = 0
    elite: int = 1
    selection: dict = field(default_factory=lambda: dict(DEFAULT_SELECTION))
    operators: list = field(default_factory=lambda: [dict(o) for o in DEFAULT_OPERATORS])
    where: str = "recipe"

    def to_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items() if k != "where"}

    def identity(self) -> dict:
        """What a resumed run must share with the saved one (generations may grow)."""
        return {k: v for k, v in self.to_dict().items() if k != "generations"}

    def crossovers(self) -> list:
        return [o for o in self.operators if OPERATORS[o["name"]].kind == "crossover"]

    def mutations(self) -> list:
        return [o for o in self.operators if OPERATORS[o["name"]].kind == "mutation"]


def _fail(where: str, message: str):
    raise UserError(f"{where}: {message}")


def _int(data: dict, key: str, where: str, default: int, low: int, high: int = 10**6) -> int:
    value = data.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        _fail(f"{where}: {key}", f"expected an integer in [{low}, {high}], got {value!r}")
    return value


def _named(data, registry: dict, where: str, what: str) -> dict:
    """{name, ...params} checked against a registry entry's params; defaults filled in."""
    if not isinstance(data, dict):
        _fail(where, f"expected a mapping such as {{name: {next(iter(registry))}}}, got {data!r}")
    name = data.get("name")
    if name not in registry:
        _fail(f"{where}.name", f"{name!r} is not {what} (valid: {', '.join(registry)})" if name is not None
              else f"missing (valid: {', '.join(registry)})")
    params = registry[name].params
    out = {"name": name}
    for key, value in data.items():
        if key != "name" and key not in params:
            _fail(f"{where}.{key}", f"unknown parameter of {name} (valid: {', '.join(params) or 'none'})")
    for key, spec in params.items():
        out[key] = _param(data.get(key, spec.default), spec, f"{where}.{key}")
    return out


def _param(value, spec, where: str):
    if spec.choices:
        if value not in spec.choices:
            _fail(where, f"{value!r} is not one of {', '.join(spec.choices)}")
        return value
    if spec.gradient and isinstance(value, (list, dict)):
        from foundry.merge.method import Param as MergeParam
        from foundry.merge.recipe import _check_setting
        _check_setting(value, MergeParam(float), where)   # a merge recipe's own checks of a gradient
        return value
    integral = isinstance(spec.default, int)
    ok = isinstance(value, int) if integral else isinstance(value, (int, float))
    if not ok or isinstance(value, bool) or value != value or not spec.low <= value <= spec.high:
        kind = "an integer" if integral else "a number"
        _fail(where, f"expected {kind} in [{spec.low}, {spec.high}], got {value!r}")
    return value if integral else float(value)


def _init(data, where: str) -> dict:
    if not isinstance(data, dict):
        _fail(where, f"expected a mapping with `from: RUN`, `from: [RUNS]` or `campaign: DIR`, got {data!r}")
    for key in data:
        if key not in INIT_KEYS:
            _fail(f"{where}.{key}", f"unknown key (valid: {', '.join(INIT_KEYS)})")
    if ("from" in data) == ("campaign" in data):
        _fail(where, "give exactly one of `from` (a checkpoint or a list of them) and `campaign` (a campaign folder)")
    out = {"noise": _param(data.get("noise", 0.01), NOISE, f"{where}.noise")}
    if "campaign" in data:
        if not isinstance(data["campaign"], str) or not data["campaign"]:
            _fail(f"{where}.campaign", f"expected a campaign folder, got {data['campaign']!r}")
        out["campaign"] = data["campaign"]
        if "top" in data:
            out["top"] = _int(data, "top", where, 0, 1)
        return out
    if "top" in data:
        _fail(f"{where}.top", "only with `campaign`")
    runs = data["from"] if isinstance(data["from"], list) else [data["from"]]
    if not runs or not all(isinstance(r, str) and r for r in runs):
        _fail(f"{where}.from", f"expected a checkpoint folder or a list of them, got {data['from']!r}")
    out["from"] = runs
    return out


def from_dict(data, where: str = "recipe"):
    """A checked GARecipe (or a genome.MergeSpec for a `merge:` recipe)."""
    if not isinstance(data, dict):
        _fail(where, "expected a mapping at the top level")
    if "merge" in data:
        others = [k for k in data if k != "merge"]
        if others:
            _fail(f"{where}: {others[0]}", "a `merge:` recipe has only the merge section (put its settings inside it)")
        from foundry.genetics.genome import parse
        return parse(data["merge"], f"{where}: merge")
    for key in data:
        if key not in GA_KEYS:
            _fail(f"{where}: {key}", f"unknown key (valid: {', '.join(GA_KEYS)}, or a `merge:` section)")
    if "fitness" not in data:
        _fail(f"{where}: fitness", "missing (e.g. {name: val_bpb})")
    if "init" not in data:
        _fail(f"{where}: init", "missing (e.g. {from: runs/base, noise: 0.01})")
    from foundry.genetics import fitness
    fitness.check(data["fitness"], f"{where}: fitness")
    population = _int(data, "population", where, 8, 2)
    elite = _int(data, "elite", where, 1, 0, population - 1)
    operators = data.get("operators", DEFAULT_OPERATORS)
    if not isinstance(operators, list) or not operators:
        _fail(f"{where}: operators", f"expected a list such as [{{name: slerp, rate: 0.5}}], got {operators!r}")
    operators = [_named(o, OPERATORS, f"{where}: operators[{i}]", "an operator") for i, o in enumerate(operators)]
    total = sum(o["rate"] for o in operators if OPERATORS[o["name"]].kind == "crossover")
    if total > 1.0 + 1e-9:
        _fail(f"{where}: operators", f"the crossover rates add up to {total:g}; at most 1 (the rest are copies)")
    return GARecipe(fitness=data["fitness"], init=_init(data["init"], f"{where}: init"), population=population,
                    generations=_int(data, "generations", where, 10, 1), seed=_int(data, "seed", where, 0, 0, 2**32 - 1),
                    elite=elite, selection=_named(data.get("selection", DEFAULT_SELECTION), SELECTIONS,
                                                  f"{where}: selection", "a selection"),
                    operators=operators, where=where)


def load(path):
    from foundry.io import read_yaml_mapping
    path = os.fspath(path)
    return from_dict(read_yaml_mapping(path), path)
