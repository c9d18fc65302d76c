"""The transfer check: does a confirmed win still hold at a larger scale, before it is committed?

    promotion:
      transfer: {model.n_layer: x2}     # "xF" scales a number; anything else is the new value
      transfer_seeds: 1

After confirmation, the winner and the baseline are both rebuilt with these changes (each keeps
its own other settings; the candidate's budget is made equal to the scaled baseline's, see
compute.py) and trained on fresh seeds (generation seed + 900 + i). The check passes when the
candidate's mean is still better at that scale; with two or more seeds the paired t interval
is reported too. The line goes into the commit body; a failed transfer makes the generation
a near-miss with that line as its reason.
"""
from __future__ import annotations

import os

import yaml

from agent import compute
from foundry.catalog import load
from foundry.config import Config, config_hash, flat, save
from foundry.errors import UserError
from foundry.mutate.edit import with_values
from foundry.search import stats

SEED_OFFSET = 900   # transfer seeds: generation seed + 900 + i, apart from screening and confirmation


def describe(changes: dict) -> str:
    return ", ".join(f"{k} {v}" for k, v in changes.items())


def scaled(cfg: Config, changes: dict) -> Config:
    """cfg with each key multiplied ("x2", "x0.5") or set (any other YAML scalar)."""
    values, updates = flat(cfg), {}
    for key, spec in changes.items():
        if key not in values:
            raise UserError(f"promotion.transfer: unknown config key {key!r}")
        old = values[key]
        if isinstance(spec, str) and spec.startswith("x") and isinstance(old, (int, float)):
            try:
                factor = float(spec[1:])
            except ValueError:
                raise UserError(f"promotion.transfer.{key}: {spec!r} is not xFACTOR") from None
            updates[key] = max(1, round(old * factor)) if isinstance(old, int) else old * factor
        else:
            updates[key] = yaml.safe_load(spec) if isinstance(spec, str) else spec
    return with_values(cfg, updates)


def trials(sup, gen: int, base_row: dict, cand_row: dict) -> list[dict]:
    """Trial rows of the transfer check: both sides rebuilt at scale, on fresh seeds."""
    changes = sup.settings.promotion.transfer
    base = scaled(load(os.path.join(sup.root, base_row["config_path"])), changes)
    cand = scaled(load(os.path.join(sup.root, cand_row["config_path"])), changes)
    cand, _ = compute.equalize(base, cand, sup.settings.promotion.equal, sup.vocab_size())
    gen_dir = os.path.join(sup.dir, f"gen_{gen:04d}")
    rows = []
    for row, cfg in ((cand_row, cand), (base_row, base)):
        path = os.path.join(gen_dir, f"transfer-{row['variant']}.yaml")
        save(cfg, path)
        for i in range(1, sup.settings.promotion.transfer_seeds + 1):
            rows.append(sup.trial_row(gen, f"{row['variant']}@transfer", "transfer", path, config_hash(cfg),
                                      row["parent"], row["mutation"], sup.ledger.generation(gen)["seed"]
                                      + SEED_OFFSET + i))
    return rows


def verdict(rows: list[dict], promotion) -> tuple[bool, str]:
    """(passed, one line) from the transfer trials."""
    where = f"Transfer ({describe(promotion.transfer)})"
    broken = [t for t in rows if t["status"] != "done" or t["metric"] is None]
    if broken:
        return False, f"{where}: failed: {broken[0]['id']} {broken[0]['status']}: {broken[0]['reason']}"
    base = {t["seed"]: t["metric"] for t in rows if t["variant"] == "baseline@transfer"}
    cand = {t["seed"]: t["metric"] for t in rows if t["variant"] != "baseline@transfer"}
    seeds = sorted(set(base) & set(cand))
    if not seeds:
        return False, f"{where}: failed: no seed trained on both sides"
    d = stats.difference([base[s] for s in seeds], [cand[s] for s in seeds], alpha=promotion.alpha,
                         lower_is_better=promotion.lower_is_better, paired=True)
    ok = d.improvement > 0
    numbers = (f"baseline {d.baseline_mean:.4f}, candidate {d.candidate_mean:.4f}: "
               + (d.summary() if d.df else f"improvement {d.improvement:.4f} ({len(seeds)} seed)"))
    return ok, f"{where}: {'passed' if ok else 'failed: the candidate is not better at this scale'}; {numbers}"
