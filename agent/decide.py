"""The noise-aware decision of a generation, and the text of a promoted baseline file.

    kind, reason, diff, seeds = judge(baseline_trials, candidate_trials, settings.promotion)
    # kind: "promote" | "near_miss" | "reject"

Both sides are trained with the same seeds (the screening seed plus k fresh confirmation
seeds). The candidate is promoted only if its mean beats the baseline's by more than
max(min_delta, z * standard error of the difference); a smaller win is a near-miss, kept
in the ledger with its numbers.
"""
from __future__ import annotations

import math

import yaml

from foundry.config import Config, config_hash, diff, from_dict
from foundry.search import stats

LINEAGE = ("name", "parent", "mutations")


def improvement(baseline: float, candidate: float, lower_is_better: bool) -> float:
    return (baseline - candidate) if lower_is_better else (candidate - baseline)


def usable(trial: dict) -> bool:
    return trial["status"] == "done" and trial["metric"] is not None and math.isfinite(trial["metric"])


def judge(baseline_trials: list[dict], candidate_trials: list[dict], promotion) -> tuple:
    """(kind, reason, stats.Difference | None, [(seed, baseline, candidate)])."""
    broken = [t for t in baseline_trials + candidate_trials if not usable(t)]
    if broken:
        t = broken[0]
        return "reject", f"{t['id']} {t['status']}: {t['reason'] or 'no metric'}", None, []
    base = {t["seed"]: t["metric"] for t in baseline_trials}
    cand = {t["seed"]: t["metric"] for t in candidate_trials}
    seeds = sorted(set(base) & set(cand))
    if not seeds:
        return "reject", "no seed trained on both sides", None, []
    d = stats.difference([base[s] for s in seeds], [cand[s] for s in seeds], z=promotion.z,
                         min_delta=promotion.min_delta, lower_is_better=promotion.lower_is_better)
    table = [(s, base[s], cand[s]) for s in seeds]
    numbers = (f"improvement {d.improvement:.4f} vs threshold {d.threshold:.4f} "
               f"(max of min_delta {promotion.min_delta:g} and z {promotion.z:g} x se {d.se:.4f}, {len(seeds)} seeds)")
    if d.significant:
        return "promote", numbers, d, table
    if d.improvement > 0:
        return "near_miss", numbers, d, table
    return "reject", numbers, d, table


def _set_dotted(data: dict, dotted: str, value) -> None:
    *sections, key = dotted.split(".")
    for section in sections:
        data = data.setdefault(section, {})
    data[key] = value


def promoted_text(original_text: str, baseline: Config, candidate: Config, mutation: str) -> str:
    """The baseline file rewritten with only the candidate's changes and updated lineage.

    The file keeps its style (it lists only what differs from the defaults) and its header
    comment; the result must load to the candidate's exact config hash.
    """
    data = yaml.safe_load(original_text) or {}
    for dotted, (_, new) in diff(baseline, candidate).items():
        if dotted.split(".")[0] not in LINEAGE:
            _set_dotted(data, dotted, new)
    data["name"] = baseline.name
    data["parent"] = f"{baseline.name}@{config_hash(baseline)}"
    data["mutations"] = [*baseline.mutations, mutation]
    if config_hash(from_dict(data)) != config_hash(candidate):
        raise RuntimeError("promoted baseline does not reproduce the candidate's config")
    ordered = {k: data[k] for k in ("name", "parent", "mutations") if k in data}
    ordered.update({k: v for k, v in data.items() if k not in ordered})
    header = []
    for line in original_text.splitlines():
        if not line.startswith("#"):
            break
        header.append(line)
    body = yaml.safe_dump(ordered, sort_keys=False, default_flow_style=False)
    return ("\n".join(header) + "\n" if header else "") + body
