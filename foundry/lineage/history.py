"""The lineage of promoted baselines, read back from git log (the commits are the record).

    foundry history [--baseline baselines/tiny.yaml] [--json]

Each promotion commit carries `Foundry-*` trailers (see agent/promotion.py); this module reads
them, oldest first: generation, change, metric before and after, commit.
"""
from __future__ import annotations

import re

import git

TRAILER = re.compile(r"^Foundry-([A-Za-z-]+): (.*)$")
FIELDS = {"Promotion": "promotion", "Baseline": "baseline", "Campaign": "campaign",
          "Generation": "generation", "Change": "change", "Metric": "metric",
          "Before": "before", "After": "after"}


def parse_trailers(body: str) -> dict:
    out = {}
    for line in body.splitlines():
        match = TRAILER.match(line.strip())
        if match and match.group(1) in FIELDS:
            out[FIELDS[match.group(1)]] = match.group(2).strip()
    return out


def promotions(repo: git.Repo, baseline_rel: str | None = None) -> list[dict]:
    """Every promotion commit reachable from HEAD, oldest first."""
    if not repo.head.is_valid():
        return []
    args = ["--format=%H%x1f%ct%x1f%B%x1e", "--fixed-strings", "--grep=Foundry-Promotion: ", "HEAD"]
    if baseline_rel:
        args += ["--", baseline_rel]
    entries = []
    for record in repo.git.log(*args).split("\x1e"):
        if not record.strip():
            continue
        sha, when, body = record.strip("\n").split("\x1f", 2)
        fields = parse_trailers(body)
        if "promotion" not in fields:
            continue
        try:
            before, after = float(fields.get("before", "nan")), float(fields.get("after", "nan"))
            generation = int(fields.get("generation", "0"))
        except ValueError:
            continue   # a hand-written commit that only looks like one
        entries.append({"commit": sha, "time": int(when), "subject": body.splitlines()[0],
                        "baseline": fields.get("baseline", ""), "campaign": fields.get("campaign", ""),
                        "generation": generation, "change": fields.get("change", ""),
                        "metric": fields.get("metric", ""), "before": before, "after": after,
                        "relative": (after - before) / abs(before) if before else 0.0,
                        "promotion": fields["promotion"]})
    return entries[::-1]
