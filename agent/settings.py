"""Campaign settings: experiments/CAMPAIGN/campaign.yaml, written on the first `foundry run`.

    search:    population, workers (auto | N), seed, trial_timeout_s, keep_checkpoints,
               gpus_per_trial, backend (local | ray), address, cpus_per_trial,
               proposer (random | learned: which proposer fills the slots queue and command leave)
    promotion: metric, lower_is_better, confirm_seeds, max_confirm_seeds, alpha, min_delta,
               no_noise_control, equal (tokens | flops), transfer ({key: xF | value}), transfer_seeds
    proposer:  command (gets the leaderboard as JSON on stdin, prints YAML variants), timeout_s

A person may edit the file between runs; `foundry run` flags override it and are saved back.
Unknown keys and wrong types are errors naming the key.
"""
from __future__ import annotations

import dataclasses
import os
from statistics import NormalDist
from dataclasses import dataclass, field

import yaml

from foundry.config import ConfigError, build_dataclass, in_range
from foundry.errors import UserError
from foundry.io import atomic_write_text
from foundry.runner.backends import BACKENDS

# baseline: the current baseline's checkpoint (to sample and eval) and every promoted one; promoted:
# the promoted ones only; all; none
CHECKPOINT_POLICIES = ("baseline", "promoted", "all", "none")
PROPOSERS = ("random", "learned")
EQUAL_MODES = ("tokens", "flops")
MIN_TRIAL_TIMEOUT_S = 30.0   # below it a trial cannot even import torch and load its data on a busy machine
RANGES = {"search.population": "[1, 10000]", "search.seed": "[0, 4294967295]",
          "search.trial_timeout_s": f"[{MIN_TRIAL_TIMEOUT_S:g}, 1e7]", "promotion.confirm_seeds": "[0, 1000]",
          "promotion.max_confirm_seeds": "[0, 1000]", "promotion.alpha": "(0, 1)", "promotion.transfer_seeds": "[1, 1000]",
          "promotion.min_delta": "[0, 1e9]", "proposer.timeout_s": "[1, 1e6]",
          "search.gpus_per_trial": "[1, 4096]", "search.cpus_per_trial": "[1, 4096]"}


@dataclass
class SearchSettings:
    population: int = 4             # candidates per generation (queued proposals first)
    workers: str = "auto"           # auto = one per GPU, else CPU workers splitting the cores
    seed: int = 1337                # generation g screens with seed + 1000 * g
    trial_timeout_s: float = 7200.0
    keep_checkpoints: str = "baseline"   # baseline | promoted | all | none: which checkpoints survive ranking
    proposer: str = "learned"       # random | learned (agent/learned.py): the mutation registry's proposer
    gpus_per_trial: int = 1         # devices a trial takes (GPUs, or CPU workers without GPUs), one process each
    backend: str = "local"          # local | ray: where trials run (foundry/runner/backends.py)
    address: str = ""               # ray: auto (also ""), local, or HOST:PORT of the cluster
    cpus_per_trial: int = 1         # ray: CPUs each trial process asks the cluster for


@dataclass
class PromotionSettings:
    metric: str = "val_bpb"         # a key of summary.json
    lower_is_better: bool = True
    confirm_seeds: int = 3          # fresh seeds for the best candidate and the baseline (>= 2, or 0)
    max_confirm_seeds: int = 6      # > confirm_seeds: a second look at this many seeds if the first is unclear
    alpha: float = 0.05             # one-sided level of the paired t-test (split over sequential looks)
    min_delta: float = 0.001        # and the mean improvement must exceed this
    no_noise_control: bool = False  # required for confirm_seeds 0 (one screening seed decides)
    equal: str = "tokens"           # tokens | flops: what every candidate shares with its baseline
    transfer: dict[str, str] = field(default_factory=dict)   # e.g. {model.n_layer: x2}: re-check at scale
    transfer_seeds: int = 1         # seeds of the transfer check (both sides)


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
    p = s.promotion
    if s.search.proposer not in PROPOSERS:
        raise UserError(f"{where('search.proposer')}: unknown {s.search.proposer!r} (valid: {', '.join(PROPOSERS)})")
    if p.equal not in EQUAL_MODES:
        raise UserError(f"{where('promotion.equal')}: unknown {p.equal!r} (valid: {', '.join(EQUAL_MODES)})")
    if p.confirm_seeds == 0 and not p.no_noise_control:
        raise UserError(f"{where('promotion.confirm_seeds')}: 0 leaves the decision to one seed's noise; "
                        "pass --no-noise-control (promotion.no_noise_control: true) to allow it")
    if p.confirm_seeds == 1:
        raise UserError(f"{where('promotion.confirm_seeds')}: a t-test needs at least 2 fresh seeds "
                        f"(or 0 with --no-noise-control), got {p.confirm_seeds}")
    if p.max_confirm_seeds and p.max_confirm_seeds < p.confirm_seeds:
        raise UserError(f"{where('promotion.max_confirm_seeds')}: {p.max_confirm_seeds} is below confirm_seeds "
                        f"({p.confirm_seeds}); 0 = no sequential confirmation")
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
    promotion = data.get("promotion")
    if isinstance(promotion, dict) and "z" in promotion:   # campaign.yaml of before the t-test
        z = promotion.pop("z")
        if not isinstance(z, (int, float)) or isinstance(z, bool) or z <= 0:
            raise UserError(f"{path}: promotion.z: replaced by promotion.alpha (the one-sided level of the "
                            f"t-test); got z {z!r}")
        promotion.setdefault("alpha", round(NormalDist().cdf(-z), 4))   # the one-sided level z meant
    if isinstance(promotion, dict) and isinstance(promotion.get("transfer"), dict):   # {model.n_layer: 8} too
        promotion["transfer"] = {k: v if isinstance(v, str) else yaml.safe_dump(v).strip().removesuffix("\n...")
                                 for k, v in promotion["transfer"].items()}
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
