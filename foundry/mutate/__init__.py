"""The mutation engine: named, stackable edits of a config, drawn by the supervisor and search.

    from foundry.mutate import MUTATIONS, apply, propose
    child = apply(cfg, "attention", "gqa_1kv")          # validated; lineage recorded
    for child, label in propose(cfg, 8, random.Random(0)): ...

MUTATIONS maps type -> (function, variants); a function is `f(cfg, variant) -> Config` and never
edits its input. apply() appends "type:variant" to `mutations`, sets `parent` to the source name
and suffixes `name`, so mutations stack. To add a type: write the function in architecture.py,
training.py, data.py or pipeline.py (model.stages and token mixers) and add it to the registry dict at the end of that file.
CLI: `foundry mutate TYPE VARIANT [--baseline PATH] [--out DIR]`, `foundry mutate --list --json`.
"""
from __future__ import annotations

import random

from foundry.config import Config, ConfigError, config_hash
from foundry.errors import UserError
from foundry.mutate.architecture import ARCHITECTURE
from foundry.mutate.data import DATA
from foundry.mutate.edit import NotApplicable, fixed_weights_reason
from foundry.mutate.pipeline import PIPELINE, builds_the_same
from foundry.mutate.training import TRAINING

MUTATIONS = {**ARCHITECTURE, **PIPELINE, **TRAINING, **DATA}
# types whose function scales by factor_of(variant): any factor "xF" (F > 0) is a valid variant of them,
# the listed ones are the defaults (the learned proposer tunes lr, warmup and weight_decay this way)
FACTOR_TYPES = ("lr", "batch_size", "warmup", "weight_decay", "width", "heads", "context")


class NoOpMutation(UserError):
    """The mutation would produce a config equal to its input."""


def label(mutation_type: str, variant: str) -> str:
    return f"{mutation_type}:{variant}"


def parse_label(text: str) -> tuple[str, str]:
    """'type:variant' -> (type, variant), checked against the registry."""
    mutation_type, sep, variant = text.partition(":")
    if not sep:
        raise UserError(f"mutation {text!r}: expected TYPE:VARIANT")
    check(mutation_type, variant)
    return mutation_type, variant


def check(mutation_type: str, variant: str) -> None:
    if mutation_type not in MUTATIONS:
        raise UserError(f"unknown mutation type {mutation_type!r} (valid: {', '.join(MUTATIONS)})")
    variants = MUTATIONS[mutation_type][1]
    if mutation_type in FACTOR_TYPES and _is_factor(variant):
        return
    if variant not in variants:
        raise UserError(f"unknown variant {variant!r} of mutation {mutation_type!r} (valid: {', '.join(variants)})")


def _is_factor(variant: str) -> bool:
    try:
        return variant.startswith("x") and 0 < float(variant[1:]) < float("inf")
    except ValueError:
        return False


def apply(cfg: Config, mutation_type: str, variant: str) -> Config:
    """The mutated, validated config with lineage; UserError says why when there is none."""
    check(mutation_type, variant)
    function = MUTATIONS[mutation_type][0]
    tag = label(mutation_type, variant)
    try:
        child = function(cfg, variant)
    except NotApplicable as e:
        raise NotApplicable(f"mutation {tag} does not apply to {cfg.name}: {e}") from None
    except ConfigError as e:
        raise UserError(f"mutation {tag} gives an invalid config from {cfg.name}: {e}") from None
    if config_hash(child) == config_hash(cfg) or builds_the_same(cfg, child):
        raise NoOpMutation(f"mutation {tag} changes nothing in {cfg.name}")
    reason = fixed_weights_reason(cfg, child)
    if reason:
        raise NotApplicable(f"mutation {tag} does not apply to {cfg.name}: {reason}")
    child.parent = cfg.name
    child.mutations = [*cfg.mutations, tag]
    child.name = f"{cfg.name}-{mutation_type}_{variant}"
    return child


def propose(cfg: Config, n: int, rng: random.Random) -> list[tuple[Config, str]]:
    """Up to n valid, distinct mutants of cfg, spread over as many mutation types as possible.

    Types are visited in a random order, one variant each per round, so a type with many
    variants is not drawn more often. Invalid results and no-ops are skipped silently.
    """
    queues = {t: rng.sample(list(variants), len(variants)) for t, (_, variants) in MUTATIONS.items()}
    order = rng.sample(list(MUTATIONS), len(MUTATIONS))
    seen = {config_hash(cfg)}
    out: list[tuple[Config, str]] = []
    while len(out) < n and any(queues.values()):
        for mutation_type in order:
            if len(out) >= n or not queues[mutation_type]:
                continue
            variant = queues[mutation_type].pop()
            try:
                child = apply(cfg, mutation_type, variant)
            except UserError:
                continue
            digest = config_hash(child)
            if digest not in seen:
                seen.add(digest)
                out.append((child, label(mutation_type, variant)))
    return out


def describe() -> list[dict]:
    """Every type with its variants and one-line description (for --list)."""
    return [{"type": t, "variants": list(variants), "description": (f.__doc__ or "").strip().splitlines()[0]}
            for t, (f, variants) in MUTATIONS.items()]
