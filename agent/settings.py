"""Campaign settings: experiments/CAMPAIGN/campaign.yaml, written on the first `foundry run`.

    search:    population, workers (auto | N), seed, trial_timeout_s, keep_checkpoints,
               gpus_per_trial, backend (local | ray), address, cpus_per_trial
    promotion: metric, lower_is_better, confirm_seeds, min_delta, z
    proposer:  command (gets the leaderboard as JSON on stdin, prints YAML variants), timeout_s

A person may edit the file between runs; `foundry run` flags override it and are saved back.
Unknown keys and wrong types are errors naming the key.
"""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field

import yaml

from foundry.config import ConfigError, build_dataclass, in_range
from foundry.errors import UserError
from foundry.io import atomic_write_text
from foundry.runner.backends import BACKENDS

# baseline: the current baseline's checkpoint (to sample and eval) and every promoted one; promoted:
# the promoted ones only; all; none
CHECKPOINT_POLICIES = ("baseline", "promoted", "all", "none")
MIN_TRIAL_TIMEOUT_S = 30.0   # below it a trial cannot even import torch and load its data on a busy machine
RANGES = {"search.population": "[1, 10000]", "search.seed": "[0, 4294967295]",
          "search.trial_timeout_s": f"[{MIN_TRIAL_TIMEOUT_S:g}, 1e7]", "promotion.confirm_seeds": "[0, 1000]",
          "promotion.min_delta": "[0, 1e9]", "promotion.z": "[0, 100]", "proposer.timeout_s": "[1, 1e6]",
          "search.gpus_per_trial": "[1, 4096]", "search.cpus_per_trial": "[1, 4096]"}


@dataclass
class SearchSettings:
    population: int = 4             # candidates per generation (queued proposals first)
    workers: str = "auto"           # auto = one per GPU, else CPU workers splitting the cores
    seed: int = 1337                # generation g screens with seed + 1000 * g
    trial_timeout_s: float = 7200.0
    keep_checkpoints: str = "baseline"   # baseline | promoted | all | none: which checkpoints survive ranking
    gpus_per_trial: int = 1         # devices a trial takes (GPUs, or CPU workers without GPUs), one process each
    backend: str = "local"          # local | ray: where trials run (foundry/runner/backends.py)
    address: str = ""               # ray: auto (also ""), local, or HOST:PORT of the cluster
    cpus_per_trial: int = 1         # ray: CPUs each trial process asks the cluster for


@dataclass
class PromotionSettings:
    metric: str = "val_bpb"         # a key of summary.json
    lower_is_better: bool = True
    confirm_seeds: int = 2          # fresh seeds for the best candidate and the baseline
    min_delta: float = 0.001        # promote only if improvement > max(min_delta, z * se)
    z: float = 2.0


@dataclass
class ProposerSettings:
    command: str = ""               # optional shell command; empty = mutations only
    timeout_s: float = 120.0


@dataclass
class Settings:
    baseline: str = "baselines/tiny.yaml"   # relative to the repository root
    search: SearchSettings = field(default_factory=SearchSettings)
    promotion: PromotionSettings = field(default_factory=PromotionSettings)
    proposer: ProposerSettings = field(default_factory=ProposerSettings)

    def worker_count(self, key: str = "search.workers"):
        """'auto' or a positive int, for foundry.runner.pool.plan_workers."""
        value = str(self.search.workers)
        if value == "auto":
            return "auto"
        if value.isdigit() and 0 < int(value) <= 4096:
            return int(value)
        raise UserError(f"{key}: expected 'auto' or a number of workers in [1, 4096], got {value!r}")


def check(s: Settings, path: str, names: dict | None = None) -> None:
    """UserError naming the flag (`names`: dotted key -> --flag) or the file and key of a bad value."""
    names = names or {}

    def where(key: str) -> str:
        return names.get(key) or f"{path}: {key}"
    for key, text in RANGES.items():
        section, name = key.split(".")
        value = getattr(getattr(s, section), name)
        if not in_range(value, text):
            raise UserError(f"{where(key)}: must be in {text}, got {value}")
    if s.search.keep_checkpoints not in CHECKPOINT_POLICIES:
        raise UserError(f"{where('search.keep_checkpoints')}: unknown {s.search.keep_checkpoints!r} "
                        f"(valid: {', '.join(CHECKPOINT_POLICIES)})")
    if s.search.backend not in BACKENDS:
        raise UserError(f"{where('search.backend')}: unknown {s.search.backend!r} (valid: {', '.join(BACKENDS)})")
    s.worker_count(where("search.workers"))


def load(path: str, overrides: dict | None = None, names: dict | None = None) -> Settings:
    """Settings from `path` (defaults if missing), then dotted `overrides` ({"search.population": 8});
    `names` maps an override's key to the flag it came from, for error messages."""
    data = {}
    if os.path.exists(path):
        try:
            with open(path, encoding="utf-8") as f:
                data = yaml.safe_load(f) or {}
        except yaml.YAMLError as e:
            raise UserError(f"{path}: invalid YAML ({str(e).splitlines()[0]})") from None
        except (OSError, UnicodeDecodeError) as e:
            raise UserError(f"{path}: cannot read ({e})") from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: top level: expected a mapping")
    for dotted, value in (overrides or {}).items():
        *sections, key = dotted.split(".")
        node = data
        for section in sections:
            node = node.setdefault(section, {})
            if not isinstance(node, dict):
                raise UserError(f"{path}: {section}: expected a mapping")
        node[key] = value
    search = data.get("search")
    if isinstance(search, dict) and isinstance(search.get("workers"), int) and not isinstance(search["workers"], bool):
        search["workers"] = str(search["workers"])  # `workers: 2` in YAML means the string field "2"
    try:
        s = build_dataclass(Settings, data)
    except ConfigError as e:
        key = str(e).split(":")[0]
        raise UserError(f"{names[key]}{str(e)[len(key):]}" if key in (names or {}) else f"{path}: {e}") from None
    check(s, path, names)
    return s


def save(s: Settings, path: str) -> None:
    atomic_write_text(path, yaml.safe_dump(dataclasses.asdict(s), sort_keys=False))
