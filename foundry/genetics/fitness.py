"""Fitness plugins: named evaluators with one signature, each scoring a model on a search or a
held-out split that the search never sees.

    from foundry.genetics.fitness import FITNESS, check, score
    spec = {"name": "weighted", "parts": [
        {"name": "val_bpb", "source": "$FOUNDRY_DATA/tinyshakespeare.txt", "weight": 0.5},
        {"name": "val_bpb", "source": "builtin", "weight": 0.5}]}
    check(spec)                                   # validates without a model (recipe parsing)
    score(model, cfg, spec, "search")             # {"fitness": ..., "parts[0].val_bpb": ..., ...}

Every plugin is called as `FITNESS[name](model, cfg, spec, split) -> dict[str, float]`: model a Foundry GPT (eval mode),
cfg its Config, spec the plugin's settings as the recipe gives them, split "search" or "heldout".
The dict always has "fitness" (higher is better) plus the plugin's own metrics. A Plugin holds the
function and a checker `check(spec, where)` that raises UserError naming the bad key. To add one:
write the two functions (here, or in a module imported here) and add a line to FITNESS at the end.

Splits, disjoint by construction:
- val_bpb: the data source's validation split (foundry.data, the trainer's own split) cut at its
  middle token; "search" scores the first half, "heldout" the second (each from its start, the
  first `batches * train.batch_size` windows; fewer when the half is shorter). Bits per byte use
  the validation split's bytes per token (exact for byte tokenizers). Both plugins compute in
  `dtype` (default fp32, so models and machines are scored alike; bf16 or auto as in train.dtype).
- task: a `foundry eval` task (foundry.benchmarks); "search" is its first `items` items, "heldout"
  the next `items` (task item order is the same whatever the limit). The score is the micro
  average of the items' correctness (`passed` for humaneval, correct/queries for mqar).
- weighted: the sum of weight * fitness over its parts, every part on the same split.
"""
from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from typing import Callable

from foundry.errors import UserError

SPLITS = ("search", "heldout")


@dataclass(frozen=True)
class Plugin:
    fn: Callable            # (model, cfg, spec, split) -> {"fitness": ..., metric: value}
    check: Callable         # (spec, where) -> None, UserError naming the bad key
    summary: str

    def __call__(self, model, cfg, spec: dict, split: str) -> dict:
        return self.fn(model, cfg, spec, split)


def _fail(where: str, message: str):
    raise UserError(f"{where}: {message}")


def _keys(spec, allowed: tuple, where: str) -> dict:
    if not isinstance(spec, dict):
        _fail(where, f"expected a mapping with a name, got {spec!r}")
    for key in spec:
        if key not in ("name", *allowed):
            _fail(f"{where}.{key}", f"unknown key (valid: {', '.join(('name', *allowed))})")
    return spec


def _positive_int(spec: dict, key: str, where: str, default=None):
    value = spec.get(key, default)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        _fail(f"{where}.{key}", f"expected a positive integer, got {value!r}")
    return value


def _device(model):
    return next(model.parameters()).device


DTYPES = ("fp32", "bf16", "auto")


def _check_dtype(spec: dict, where: str) -> None:
    if spec.get("dtype", "fp32") not in DTYPES:
        _fail(f"{where}.dtype", f"{spec['dtype']!r} is not one of {', '.join(DTYPES)}")


def _scoring_cfg(cfg, spec: dict):
    """cfg with the spec's compute dtype (default fp32: every model and machine scored alike)."""
    return dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, dtype=spec.get("dtype", "fp32")))


# ---------------------------------------------------------------- val_bpb
VAL_BPB_KEYS = ("source", "batches", "dtype", "weight", "label")
DEFAULT_BATCHES = 8   # what eval.batches defaulted to before the byte slice


def check_val_bpb(spec: dict, where: str) -> None:
    _keys(spec, VAL_BPB_KEYS, where)
    source = spec.get("source")
    if source is not None and (not isinstance(source, str) or not source.strip()):
        _fail(f"{where}.source", f"expected a data source (builtin, a text file, a folder), got {source!r}")
    _positive_int(spec, "batches", where)
    _check_dtype(spec, where)


_VALIDATION: dict = {}      # data config as JSON -> (validation tokens, bytes per token), per process


def _validation(data):
    """(validation tokens, bytes per token) of a data config; read once per process (a worker scores many)."""
    from foundry.data import load_dataset
    key = json.dumps(dataclasses.asdict(data), sort_keys=True)
    if key not in _VALIDATION:
        dataset = load_dataset(data)
        _VALIDATION[key] = (dataset.val, dataset.val_bytes_per_token)
    return _VALIDATION[key]


def split_tokens(tokens, split: str):
    """The half of a validation split that `split` names: search the first, heldout the second."""
    middle = len(tokens) // 2
    return tokens[:middle] if split == "search" else tokens[middle:]


def val_bpb(model, cfg, spec: dict, split: str) -> dict:
    """-val_bpb of the model on one half of `source`'s validation split (default: its own data)."""
    from foundry.evaluation import val_metrics
    source = spec.get("source") or cfg.data.source
    if os.path.expandvars(source) != os.path.expandvars(cfg.data.source) and cfg.data.tokenizer not in ("byte", "hf"):
        raise UserError(f"fitness val_bpb: source {source!r}: a {cfg.data.tokenizer} vocabulary is built from its "
                        f"own corpus ({cfg.data.source}); score such a model on that source, or use a byte/hf "
                        "tokenizer")
    data = dataclasses.replace(cfg.data, source=os.path.expandvars(source))
    tokens, bytes_per_token = _validation(data)
    half = split_tokens(tokens, split)
    if (len(half) - 1) // cfg.model.block_size < 1:
        raise UserError(f"fitness val_bpb: {source}: the {split} half of the validation split has {len(half)} tokens, "
                        f"fewer than one window of model.block_size={cfg.model.block_size}")
    # the first `batches` batches of train.batch_size windows of block_size tokens of the half (the
    # trainer's own slice is eval.bytes of the whole split; this plugin scores halves of it)
    batches = spec.get("batches") or DEFAULT_BATCHES
    scored = half[:batches * cfg.train.batch_size * cfg.model.block_size + 1]
    metrics = val_metrics(model, scored, _scoring_cfg(cfg, spec), bytes_per_token, _device(model))
    return {"fitness": -metrics["val_bpb"], "val_bpb": metrics["val_bpb"], "val_loss": metrics["val_loss"]}


# ---------------------------------------------------------------- task
TASK_KEYS = ("task", "items", "data", "paths", "shots", "seed", "dtype", "weight", "label")
DEFAULT_ITEMS = 100
# task -> (item key counted as successes, item key counted as trials or None for 1 per item)
ITEM_SCORES = {"humaneval": ("passed", None), "mqar": ("correct", "queries")}
DEFAULT_ITEM_SCORE = ("correct", None)
NOT_ITEMIZED = {"bpb": "use the val_bpb fitness plugin (it splits the validation text)"}


def check_task(spec: dict, where: str) -> None:
    from foundry.benchmarks import TASKS
    _keys(spec, TASK_KEYS, where)
    task = spec.get("task")
    if task not in TASKS:
        _fail(f"{where}.task",
              f"{task!r} is not a foundry eval task (valid: {', '.join(TASKS)})" if task else "missing")
    if task in NOT_ITEMIZED:
        _fail(f"{where}.task", f"{task}: {NOT_ITEMIZED[task]}")
    _positive_int(spec, "items", where)
    _check_dtype(spec, where)
    if spec.get("paths") is not None and not isinstance(spec["paths"], dict):
        _fail(f"{where}.paths", f"expected a mapping of task -> file, got {spec['paths']!r}")
    for key in ("shots", "seed"):
        if spec.get(key) is not None and (not isinstance(spec[key], int) or isinstance(spec[key], bool)):
            _fail(f"{where}.{key}", f"expected an integer, got {spec[key]!r}")


def tokenizer_of(model, cfg):
    """The model's tokenizer: the one its builder attached (model.tokenizer), else cfg.data's."""
    tokenizer = getattr(model, "tokenizer", None)
    if tokenizer is not None:
        return tokenizer
    from foundry.data import build_tokenizer, load_dataset
    if cfg.data.tokenizer == "byte":
        return build_tokenizer("byte", "")
    return load_dataset(cfg.data).tokenizer


def task(model, cfg, spec: dict, split: str) -> dict:
    """A foundry eval task's score on the split's items: search the first N, heldout the next N."""
    from foundry.benchmarks import EvalOptions, run_tasks
    from foundry.benchmarks.targets import FoundryLM
    name, items = spec["task"], spec.get("items") or DEFAULT_ITEMS
    opts = EvalOptions(data_dir=spec.get("data"), paths=dict(spec.get("paths") or {}), shots=spec.get("shots"),
                       limit=items if split == "search" else 2 * items, seed=spec.get("seed", EvalOptions.seed))
    lm = FoundryLM(model, tokenizer_of(model, cfg), _scoring_cfg(cfg, spec), device=str(_device(model)))
    result = run_tasks(lm, [name], opts)[name]
    chosen = result["items"][:items] if split == "search" else result["items"][items:2 * items]
    if not chosen:
        raise UserError(f"fitness task {name}: no {split} items (the task has {len(result['items'])}; "
                        f"the heldout split needs more than items={items})")
    hits, trials = ITEM_SCORES.get(name, DEFAULT_ITEM_SCORE)
    total = sum(float(it[trials]) for it in chosen) if trials else len(chosen)
    value = sum(float(it[hits]) for it in chosen) / max(1.0, total)
    return {"fitness": value, name: value, "items": float(len(chosen))}


# ---------------------------------------------------------------- weighted
WEIGHTED_KEYS = ("parts",)


def check_weighted(spec: dict, where: str) -> None:
    _keys(spec, WEIGHTED_KEYS, where)
    parts = spec.get("parts")
    if not isinstance(parts, list) or not parts:
        _fail(f"{where}.parts", f"expected a non-empty list of fitness specs, got {parts!r}")
    for i, part in enumerate(parts):
        here = f"{where}.parts[{i}]"
        if isinstance(part, dict) and part.get("name") == "weighted":
            _fail(f"{here}.name", "weighted parts cannot nest another weighted")
        check(part, here)
        weight = part.get("weight", 1.0)
        if not isinstance(weight, (int, float)) or isinstance(weight, bool):
            _fail(f"{here}.weight", f"expected a number, got {weight!r}")


def weighted(model, cfg, spec: dict, split: str) -> dict:
    """sum(weight * fitness) of the parts; each part's metrics as `LABEL.metric` (default label parts[i])."""
    out, total = {}, 0.0
    for i, part in enumerate(spec["parts"]):
        label = part.get("label") or f"parts[{i}]"
        scores = score(model, cfg, part, split)
        total += float(part.get("weight", 1.0)) * scores["fitness"]
        out.update({f"{label}.{key}": value for key, value in scores.items()})
    return {"fitness": total, **out}


# ---------------------------------------------------------------- registry and entry points
def _plugin(spec, where: str):
    if not isinstance(spec, dict):
        _fail(where, f"expected a mapping such as {{name: val_bpb}}, got {spec!r}")
    name = spec.get("name")
    if name not in FITNESS:
        _fail(f"{where}.name", f"{name!r} is not a fitness plugin (valid: {', '.join(FITNESS)})" if name else
              f"missing (valid: {', '.join(FITNESS)})")
    return FITNESS[name]


def check(fitness_spec, where: str = "fitness") -> None:
    """Validate a spec without a model; UserError names the key."""
    _plugin(fitness_spec, where).check(fitness_spec, where)


def score(model, cfg, fitness_spec, split: str) -> dict:
    """The named plugin's scores on `split` ("search" or "heldout"); always has "fitness"."""
    if split not in SPLITS:
        raise UserError(f"fitness split {split!r}: expected one of {', '.join(SPLITS)}")
    plugin = _plugin(fitness_spec, "fitness")
    plugin.check(fitness_spec, "fitness")
    scores = plugin(model, cfg, fitness_spec, split)
    if not isinstance(scores, dict) or "fitness" not in scores:
        raise UserError(f"fitness {fitness_spec['name']}: the plugin returned no 'fitness' ({scores!r})")
    return {key: float(value) for key, value in scores.items()}


FITNESS = {
    "val_bpb": Plugin(val_bpb, check_val_bpb, "-bits per byte on a half of a data source's validation split"),
    "task": Plugin(task, check_task, "a foundry eval task's accuracy on its first (search) or next (heldout) items"),
    "weighted": Plugin(weighted, check_weighted, "sum of weight * fitness over parts, on the same split"),
}
