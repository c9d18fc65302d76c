"""`foundry report CAMPAIGN [--out DIR] [--json]`: what a campaign found and what it cost, as PNG plots
and a short Markdown and HTML page, read from its ledger (read-only: works while it runs).

    foundry report experiments/tiny                # or just `tiny`: a campaign under ./experiments
    foundry report tiny --out /tmp/tiny-report --json

In DIR (default CAMPAIGN/report/): report.md, report.html, and the plots of agent/plots.py:
baseline.png (the baseline's mean over its seeds in every generation, by generation and by the
wall hour its generation started, promotions marked; a promotion whose next generation never
measured the new baseline adds that baseline as measured on the promotion's confirmation seeds,
drawn as a diamond), promotions.png (each promotion's improvement with its 95% t interval),
effects.png (every mutation type's effect across the whole ledger: mean relative change of the
candidates against the baseline trial of the same generation and seed, 95% t interval, count; a
change from a queue file or proposer.command counts under its own label),
failures.png (failed trials by reason). The page adds the compute spent (training FLOPs and
tokens, CPU and GPU hours of the trials) and the decisions. --json prints the numbers instead.
"""
from __future__ import annotations

import argparse
import html
import json
import os
from collections import Counter, defaultdict

from agent import plots
from agent.ledger import Ledger
from foundry.errors import ArgumentParser, UserError
from foundry.io import atomic_write_text, check_writable_dir, to_json
from foundry.search import stats


def campaign_dir(name: str) -> str:
    for path in (name, os.path.join("experiments", name)):
        if os.path.exists(os.path.join(path, "ledger.sqlite")):
            return path
    raise UserError(f"{name}: no campaign ledger there or under experiments/ (has `foundry run` started it?)")


def summary_of(trial: dict) -> dict:
    return json.loads(trial["summary"]) if trial["summary"] else {}


def gather(ledger, lower_is_better: bool = True) -> dict:
    trials, gens = ledger.trials(), ledger.generations()
    start = min([t["started_at"] for t in trials if t["started_at"]] + [g["started_at"] for g in gens], default=0.0)
    base_by = defaultdict(list)
    for t in trials:
        if t["variant"] == "baseline" and t["status"] == "done" and t["metric"] is not None:
            base_by[t["gen"]].append(t)
    baseline = []
    for g in gens:
        values = [t["metric"] for t in base_by.get(g["gen"], [])]
        if values:
            lo, hi = stats.confidence_interval(values)
            baseline.append({"gen": g["gen"], "mean": stats.mean(values), "lo": lo, "hi": hi, "n": len(values),
                             "hours": (g["started_at"] - start) / 3600, "source": "baseline"})   # in force from then
    decisions = ledger.decisions()
    promotions = []
    for d in decisions:
        if d["kind"] == "promote":
            diff = (json.loads(d["details"] or "{}").get("difference") or {})
            lo, hi = diff.get("improvement"), diff.get("improvement")
            if diff.get("df"):
                lo, hi = stats.Difference(**diff).interval(0.95)
            promotions.append({"gen": d["gen"], "mutation": d["mutation"], "before": d["baseline_mean"],
                               "after": d["candidate_mean"], "improvement": d["improvement"], "lo": lo, "hi": hi,
                               "state": d["state"], "commit": d["commit_sha"]})
    baseline = sorted(baseline + promoted_baselines(trials, decisions, {b["gen"] for b in baseline}, start),
                      key=lambda b: b["gen"])
    return {"baseline": baseline, "promotions": promotions, "effects": effects(trials, lower_is_better),
            "compute": compute_spent(trials), "failures": failures(trials),
            "decisions": dict(Counter(d["kind"] for d in decisions)), "generations": len(gens),
            "trials": len(trials)}


def promoted_baselines(trials: list[dict], decisions: list[dict], measured: set, start: float) -> list[dict]:
    """The baseline a committed promotion of generation g made, as generation g + 1's point where that
    generation measured no baseline (the campaign ended first): the promoted candidate's own
    confirmation trials (source "confirmation"), at the time of the decision."""
    out = []
    for d in decisions:
        if d["kind"] != "promote" or d["state"] != "committed" or d["gen"] + 1 in measured:
            continue
        values = [t["metric"] for t in trials if t["gen"] == d["gen"] and t["role"] == "confirm"
                  and t["variant"] == d["variant"] and t["status"] == "done" and t["metric"] is not None]
        if values:
            lo, hi = stats.confidence_interval(values)
            out.append({"gen": d["gen"] + 1, "mean": stats.mean(values), "lo": lo, "hi": hi, "n": len(values),
                        "hours": (d["created_at"] - start) / 3600, "source": "confirmation"})
    return out


def effects(trials: list[dict], lower_is_better: bool) -> list[dict]:
    """Per mutation type over the whole ledger: relative improvement against the paired baseline trial."""
    base = {(t["gen"], t["seed"]): t["metric"] for t in trials
            if t["variant"] == "baseline" and t["status"] == "done" and t["metric"]}
    by_type = defaultdict(list)
    for t in trials:
        b = base.get((t["gen"], t["seed"]))
        if t["variant"] == "baseline" or t["role"] == "transfer" or t["status"] != "done" or b is None:
            continue
        gain = ((b - t["metric"]) if lower_is_better else (t["metric"] - b)) / abs(b)
        for part in (t["mutation"] or "(unnamed)").split("+"):   # a change from a queue file: its own label
            by_type[part.split(":")[0] if ":" in part else part].append(gain)
    rows = []
    for name, gains in by_type.items():
        lo, hi = stats.confidence_interval(gains)
        rows.append({"type": name, "mean": stats.mean(gains), "lo": lo, "hi": hi, "n": len(gains)})
    return sorted(rows, key=lambda r: -r["mean"])


def compute_spent(trials: list[dict]) -> dict:
    out = {"train_flops": 0.0, "train_tokens": 0, "cpu_hours": 0.0, "gpu_hours": 0.0}
    for t in trials:
        s = summary_of(t)
        out["train_flops"] += s.get("train_flops") or 0.0
        out["train_tokens"] += s.get("train_tokens") or 0
        key = "gpu_hours" if (t["device"] or "").startswith("cuda") else "cpu_hours"
        out[key] += (t["wall_s"] or 0.0) / 3600
    return out


def failures(trials: list[dict]) -> list[dict]:
    counts = Counter((t["status"], (t["reason"] or "").splitlines()[0][:100] if t["reason"] else "")
                     for t in trials if t["status"] in ("failed", "diverged", "timeout"))
    return [{"status": s, "reason": r, "count": n} for (s, r), n in counts.most_common()]


def markdown(data: dict, name: str, metric: str, pngs: list[str]) -> str:
    c = data["compute"]
    lines = [f"# Campaign {name}", "",
             f"{data['generations']} generations, {data['trials']} trials; decisions: "
             + (", ".join(f"{k} {v}" for k, v in sorted(data["decisions"].items())) or "none"), ""]
    if data["baseline"]:
        first, last = data["baseline"][0], data["baseline"][-1]
        where = (f"generation {last['gen']}" if last["source"] == "baseline" else
                 f"after generation {last['gen'] - 1}'s promotion, on its {last['n']} confirmation seeds")
        lines += [f"Baseline {metric}: {first['mean']:.4f} (generation {first['gen']}) -> {last['mean']:.4f} "
                  f"({where}), {100 * (last['mean'] - first['mean']) / first['mean']:+.2f}%", ""]
    lines += [f"![{os.path.splitext(p)[0]}]({p})" for p in pngs] + ["", "## Promotions", ""]
    lines += ["| gen | change | before | after | improvement (95% CI) | state | commit |", "|---|---|---|---|---|---|---|"]
    lines += [f"| {p['gen']} | {p['mutation']} | {p['before']:.4f} | {p['after']:.4f} | {p['improvement']:.4f} "
              f"[{p['lo']:.4f}, {p['hi']:.4f}] | {p['state']} | {(p['commit'] or '')[:10]} |"
              for p in data["promotions"]] or ["| - | none | | | | | |"]
    lines += ["", "## Effect of each mutation type (relative improvement vs the same-seed baseline)", "",
              "| type | mean | 95% CI | trials |", "|---|---|---|---|"]
    lines += [f"| {e['type']} | {100 * e['mean']:+.2f}% | "
              + (f"[{100 * e['lo']:+.2f}%, {100 * e['hi']:+.2f}%]" if e["n"] >= 2 else "n/a (one trial)")
              + f" | {e['n']} |" for e in data["effects"]]
    lines += ["", "## Compute", "", f"- training: {c['train_flops']:.3g} FLOPs, {c['train_tokens']:,} tokens",
              f"- trials: {c['cpu_hours']:.2f} CPU-worker hours, {c['gpu_hours']:.2f} GPU hours", "",
              "## Failed trials", ""]
    lines += [f"- {f['count']} x {f['status']}: {f['reason']}" for f in data["failures"]] or ["- none"]
    return "\n".join(lines) + "\n"


def to_html(text: str, name: str) -> str:
    """The Markdown page as plain HTML (headings, images, tables, lists, paragraphs)."""
    out, table = [f"<!doctype html><meta charset=utf-8><title>{html.escape(name)}</title>"], False
    for line in text.splitlines():
        if line.startswith("|"):
            cells = [html.escape(c.strip()) for c in line.strip("|").split("|")]
            if set(line) <= set("|-"):
                continue
            out.append(("<table border=1 cellpadding=3>" if not table else "") + "<tr>"
                       + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
            table = True
            continue
        if table:
            out.append("</table>")
            table = False
        if line.startswith("#"):
            level = len(line) - len(line.lstrip("#"))
            out.append(f"<h{level}>{html.escape(line.lstrip('# '))}</h{level}>")
        elif line.startswith("!["):
            out.append(f"<p><img src='{html.escape(line.split('(')[1].rstrip(')'))}' width=720></p>")
        elif line.startswith("- "):
            out.append(f"<li>{html.escape(line[2:])}</li>")
        elif line:
            out.append(f"<p>{html.escape(line)}</p>")
    return "\n".join(out + (["</table>"] if table else [])) + "\n"


def report_main(argv) -> int:
    p = ArgumentParser(prog="foundry report", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("campaign", help="campaign folder (experiments/NAME) or name")
    p.add_argument("--out", help="folder for report.md, report.html and the PNGs (default CAMPAIGN/report)")
    p.add_argument("--json", action="store_true", help="print the report's numbers as JSON")
    args = p.parse_args(argv)
    folder = campaign_dir(args.campaign)
    out = args.out or os.path.join(folder, "report")
    check_writable_dir(out, "--out")   # before any work
    from agent import settings as settings_mod
    s = settings_mod.load(os.path.join(folder, "campaign.yaml"))
    ledger = Ledger(os.path.join(folder, "ledger.sqlite"), readonly=True)
    try:
        data = gather(ledger, s.promotion.lower_is_better)
    finally:
        ledger.close()
    os.makedirs(out, exist_ok=True)
    pngs = plots.render(data, out, s.promotion.metric)
    name = os.path.basename(os.path.abspath(folder))
    text = markdown(data, name, s.promotion.metric, pngs)
    atomic_write_text(os.path.join(out, "report.md"), text)
    atomic_write_text(os.path.join(out, "report.html"), to_html(text, name))
    if args.json:
        print(to_json({**data, "files": pngs + ["report.md", "report.html"], "out": out}, indent=1))
    else:
        print(f"{out}: report.md, report.html, {', '.join(pngs)}")
    return 0
