"""Where a generation's candidates come from, in this order of precedence:

1. experiments/CAMPAIGN/queue/*.yaml — dropped in by a person or a coding agent. A file lists
   only what differs from the current baseline (or is a whole config, e.g. from `foundry
   mutate`); it is merged over the baseline. Invalid files move to queue/rejected/ with a
   .reason file beside them. What the comparison must hold fixed is refused: a change of
   train.seed (the supervisor sets seeds) or of the budget (every candidate trains the
   baseline's tokens), and a change of eval.* unless the file asks for it with a top-level
   `allow_changes: [eval.tasks]` (keys or sections). The label shows every key that differs.
2. proposer.command (campaign.yaml) — a shell command that reads the leaderboard as JSON on
   stdin and prints YAML variants (documents separated by `---`), merged the same way.
3. The mutation registry: foundry.mutate.propose(baseline, n, rng).
"""
from __future__ import annotations

import glob
import json
import os
import random
import re
import shutil
import subprocess
import time
from dataclasses import dataclass

import yaml

from foundry.catalog import from_dict
from foundry.config import Config, config_hash, diff, to_dict
from foundry.errors import UserError
from foundry.io import atomic_write_text
from foundry.mutate import apply, parse_label, propose


@dataclass
class Proposal:
    cfg: Config
    mutation: str          # one-line summary of the change: names, commit subjects
    source: str            # "queue:FILE" | "proposer" | "mutate"
    queue_file: str = ""   # deleted once the generation that trains it is in the ledger
    note: str = ""         # what the supervisor changed (its budget made equal to the baseline's)

    @property
    def label(self) -> str:
        """Short name for folders and trial ids: the queue file's stem, else the mutation."""
        return os.path.splitext(os.path.basename(self.queue_file))[0] if self.queue_file else self.mutation


def deep_merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for key, value in over.items():
        out[key] = deep_merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


PROTECTED = {"train.seed": "the supervisor sets every trial's seed",
             "budget": "every candidate trains the baseline's budget (promotion.equal)",
             "eval": "the baseline's evaluation scores both sides; list the keys under allow_changes: to change it"}
NEVER_ALLOWED = ("train.seed", "budget")


def protected_changes(baseline: Config, cfg: Config, allowed=()) -> str:
    """'' or why the variant is refused: it changes what the comparison holds fixed."""
    for key, (a, b) in sorted(diff(baseline, cfg).items()):
        for guarded, why in PROTECTED.items():
            hit = key == guarded or key.startswith(guarded + ".")
            ok = guarded not in NEVER_ALLOWED and any(key == x or key.startswith(x + ".") for x in allowed)
            if hit and not ok:
                return f"changes {key} ({a!r} -> {b!r}): {why}"
    return ""


def change_summary(baseline: Config, cfg: Config, limit: int | None = 3) -> str:
    changes = [f"{k}={b}" for k, (a, b) in sorted(diff(baseline, cfg).items())
               if k.split(".")[0] not in ("name", "parent", "mutations")]
    if not changes:
        return "no change"
    if limit is None or len(changes) <= limit:
        return ", ".join(changes)
    return ", ".join(changes[:limit]) + f" +{len(changes) - limit} more"


def mutation_of(baseline: Config, cfg: Config) -> str:
    """The registry labels a variant added to the baseline's mutation list when they explain every
    key it changes; otherwise (a whole config from elsewhere, a hand edit) all of its changed keys."""
    n = len(baseline.mutations)
    added = cfg.mutations[n:] if cfg.mutations[:n] == baseline.mutations else []
    if added:
        try:
            redone = baseline
            for label in added:
                redone = apply(redone, *parse_label(label))
            if config_hash(redone) == config_hash(cfg):
                return "+".join(added)
        except UserError:
            pass
    return change_summary(baseline, cfg, limit=None)


def variant_from_mapping(baseline: Config, data, where: str) -> Config:
    if not isinstance(data, dict):
        raise UserError(f"{where}: expected a YAML mapping of config keys")
    data = dict(data)
    allowed = data.pop("allow_changes", [])
    if not isinstance(allowed, list) or not all(isinstance(k, str) for k in allowed):
        raise UserError(f"{where}: allow_changes: expected a list of config keys, got {allowed!r}")
    try:
        cfg = from_dict(deep_merge(to_dict(baseline), data))
    except UserError as e:
        raise UserError(f"{where}: {e}") from None
    refused = protected_changes(baseline, cfg, allowed)
    if refused:
        raise UserError(f"{where}: {refused}")
    return cfg


def from_queue(queue_dir: str, baseline: Config, log) -> list[Proposal]:
    """Every valid queued file, oldest first; invalid ones are moved aside with their reason."""
    files = sorted(glob.glob(os.path.join(queue_dir, "*.yaml")) + glob.glob(os.path.join(queue_dir, "*.yml")),
                   key=lambda p: (os.path.getmtime(p), p))
    out = []
    for path in files:
        name = os.path.basename(path)
        try:
            with open(path, encoding="utf-8") as f:
                data = yaml.safe_load(f)
            cfg = variant_from_mapping(baseline, data, f"queue/{name}")
        except (UserError, yaml.YAMLError, OSError) as e:
            reason = str(e).splitlines()[0]
            rejected = os.path.join(queue_dir, "rejected")
            os.makedirs(rejected, exist_ok=True)
            shutil.move(path, os.path.join(rejected, name))
            atomic_write_text(os.path.join(rejected, name + ".reason"), reason + "\n")
            log(f"queue: rejected {name}: {reason}")
            continue
        out.append(Proposal(cfg, mutation_of(baseline, cfg), f"queue:{name}", path))
    return out


def from_command(command: str, leaderboard: dict, baseline: Config, timeout_s: float, log) -> list[Proposal]:
    """Run proposer.command; a failing or silent command costs a log line, never the loop."""
    try:
        done = subprocess.run(["/bin/sh", "-c", command], input=json.dumps(leaderboard), text=True,
                              capture_output=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        log(f"proposer: command timed out after {timeout_s:.0f}s")
        return []
    if done.returncode != 0:
        tail = (done.stderr.strip().splitlines() or [""])[-1]
        log(f"proposer: command exited {done.returncode}: {tail}")
        return []
    out = []
    try:
        documents = [d for d in yaml.safe_load_all(done.stdout) if d is not None]
    except yaml.YAMLError as e:
        log(f"proposer: output is not YAML ({str(e).splitlines()[0]})")
        return []
    for i, data in enumerate(documents):
        try:
            cfg = variant_from_mapping(baseline, data, f"proposer output #{i + 1}")
        except UserError as e:
            log(f"proposer: {e}")
            continue
        out.append(Proposal(cfg, mutation_of(baseline, cfg), "proposer"))
    return out


def from_mutations(baseline: Config, n: int, seed: int) -> list[Proposal]:
    return [Proposal(cfg, label, "mutate") for cfg, label in propose(baseline, n, random.Random(seed))]


def slug(text: str) -> str:
    """A variant name safe for folders and trial ids."""
    return re.sub(r"[^A-Za-z0-9_.]+", "_", text).strip("_")[:40] or "variant"


def wait_for_queue(queue_dir: str, seconds: float, stopped) -> None:
    """Block until a YAML file lands in the queue, `stopped()` is true, or the time is up."""
    end = time.time() + seconds
    while time.time() < end and not stopped():
        if os.path.isdir(queue_dir) and any(n.endswith((".yaml", ".yml")) for n in os.listdir(queue_dir)):
            return
        time.sleep(1)
