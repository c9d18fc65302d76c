"""Combining and reporting results: the ranking score, the people-facing table, the JSON file.

    rank_score(results, {"mmlu": 1.0, "gsm8k": 2.0})   # weighted mean of rank values; higher is better
    print(format_table(results))
    write_json(report, "out/eval.json")                  # atomic: a crash leaves no half-written file

A result's `rank_value` is its centered score (accuracy - chance) / (1 - chance) for accuracy tasks
and -bpb for bpb, so higher is always better and tasks with different chance levels compare.
The supervisor ranks with eval.rank from the config (task -> weight); empty means {"bpb": 1}.
"""
from __future__ import annotations

import math

from foundry.errors import UserError
from foundry.io import atomic_write_text, to_json

DEFAULT_RANK = {"bpb": 1.0}


def rank_score(results: dict, weights: dict | None = None) -> float:
    """sum(w * rank_value) / sum(w) over the weighted tasks; every weighted task must be in `results`."""
    weights = dict(weights or DEFAULT_RANK)
    missing = [t for t in weights if t not in results]
    if missing:
        raise UserError(f"eval.rank: no result for {', '.join(missing)} (have: {', '.join(results) or 'none'})")
    total = sum(weights.values())
    if total == 0:
        raise UserError(f"eval.rank: weights must not sum to zero, got {weights}")
    value = sum(w * results[t]["rank_value"] for t, w in weights.items()) / total
    if not math.isfinite(value):
        raise UserError(f"eval.rank: the combined score is not finite ({value})")
    return value


def parse_weights(text: str) -> dict:
    """"mmlu=1,gsm8k=2" or "mmlu" -> {"mmlu": 1.0, "gsm8k": 2.0}."""
    weights = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, _, weight = part.partition("=")
        try:
            weights[name.strip()] = float(weight) if weight else 1.0
        except ValueError:
            raise UserError(f"--rank: weight of {name!r} is not a number: {weight!r}") from None
    return weights


def format_table(results: dict) -> str:
    rows = [("task", "metric", "n", "score", "chance", "centered", "seconds")]
    for name, r in results.items():
        chance = "-" if r.get("chance") is None else f"{r['chance']:.3f}"
        cent = "-" if r.get("centered") is None else f"{r['centered']:+.4f}"
        rows.append((name, r["metric"], str(r["n"]), f"{r['score']:.4f}", chance, cent, f"{r.get('seconds', 0):.1f}"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows)


def write_json(report: dict, path: str) -> None:
    atomic_write_text(path, to_json(report, indent=1, default=str) + "\n")
