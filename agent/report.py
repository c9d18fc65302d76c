"""What `foundry status` and `foundry runs` show, read from a campaign's ledger (read-only, so
they work while the supervisor writes). Dicts for --json; tables for people.

    data = status(Ledger(path, readonly=True), campaign_dir)
    print(status_table(data))
"""
from __future__ import annotations

import json
import os
import time

from agent.lock import pid_alive, read_pid
from foundry.config import config_hash, to_dict
from foundry.io import read_progress
from foundry.search import stats


def leaderboard(ledger, lower_is_better: bool = True, limit: int = 10) -> list[dict]:
    """Configs ranked by their mean metric over finished seeds."""
    groups: dict[tuple, list[dict]] = {}
    for t in ledger.trials(status="done"):
        if t["metric"] is not None:
            groups.setdefault((t["gen"], t["variant"]), []).append(t)
    rows = []
    for (gen, variant), trials in groups.items():
        values = [t["metric"] for t in trials]
        rows.append({"gen": gen, "variant": variant, "mutation": trials[0]["mutation"] or "(baseline)",
                     "config_hash": trials[0]["config_hash"], "mean": stats.mean(values),
                     "stderr": stats.stderr(values), "seeds": len(values)})
    rows.sort(key=lambda r: r["mean"] if lower_is_better else -r["mean"])
    return rows[:limit]


def proposer_input(ledger, campaign: str, promotion, baseline_rel: str, baseline) -> dict:
    """The JSON that proposer.command reads on stdin."""
    keep = ("gen", "kind", "variant", "mutation", "baseline_mean", "candidate_mean", "reason")
    return {"campaign": campaign, "metric": promotion.metric,
            "baseline": {"path": baseline_rel, "hash": config_hash(baseline), "name": baseline.name,
                         "config": to_dict(baseline)},
            "leaderboard": leaderboard(ledger, promotion.lower_is_better, limit=20),
            "decisions": [{k: d[k] for k in keep} for d in ledger.decisions()]}


def status(ledger, campaign_dir: str, metric: str = "val_bpb", lower_is_better: bool = True) -> dict:
    pid = read_pid(os.path.join(campaign_dir, "supervisor.lock"))
    last = ledger.last_generation()
    root = ledger.get_meta("root", ".")   # run dirs are stored relative to the repository root
    running = []
    for t in ledger.trials(status="running"):
        progress = read_progress(os.path.join(root, t["run_dir"]))
        running.append({"id": t["id"], "worker": t["worker"], "device": t["device"],
                        "elapsed_s": time.time() - (t["started_at"] or time.time()),
                        "fraction": progress.get("fraction"), "step": progress.get("step"),
                        "loss": progress.get("loss")})
    all_trials = ledger.trials()
    finished = [t for t in all_trials if t["finished_at"]]
    counts: dict[str, int] = {}
    for t in all_trials:
        counts[t["status"]] = counts.get(t["status"], 0) + 1
    started = [t["started_at"] for t in all_trials if t["started_at"]]
    end = time.time() if running or not finished else max(t["finished_at"] for t in finished)
    hours = (end - min(started)) / 3600 if started else 0.0
    decisions = ledger.decisions()
    kinds: dict[str, int] = {}
    for d in decisions:
        kinds[d["kind"]] = kinds.get(d["kind"], 0) + 1
    promotions = [{k: d[k] for k in ("gen", "variant", "mutation", "baseline_mean", "candidate_mean",
                                     "state", "commit_sha")} for d in decisions if d["kind"] == "promote"]
    return {
        "campaign": os.path.basename(os.path.abspath(campaign_dir)),
        "supervisor": {"pid": pid, "running": bool(pid and pid_alive(pid))},
        "generation": last and {k: last[k] for k in ("gen", "phase", "baseline_hash", "candidate", "started_at")},
        "metric": metric,
        "running": running,
        "leaderboard": leaderboard(ledger, lower_is_better),
        "promotions": promotions[-5:],
        "decisions": kinds,
        "trials": counts,
        "throughput": {"finished": len(finished), "hours": hours,
                       "trials_per_hour": len(finished) / hours if hours else 0.0},
    }


def status_table(s: dict) -> str:
    sup = s["supervisor"]
    gen = s["generation"]
    state = f"running (pid {sup['pid']})" if sup["running"] else "not running"
    lines = [f"campaign {s['campaign']}: supervisor {state}",
             f"generation {gen['gen']} ({gen['phase']})" if gen else "no generation yet",
             "trials: " + ", ".join(f"{k} {v}" for k, v in sorted(s["trials"].items())) +
             f"; {s['throughput']['trials_per_hour']:.1f} trials/hour",
             "decisions: " + (", ".join(f"{k} {v}" for k, v in sorted(s["decisions"].items())) or "none")]
    if s["running"]:
        lines += ["", "running:" if sup["running"] else "left by a supervisor that died (re-queued on the next run):"]
        for r in s["running"]:
            pct = f"{100 * r['fraction']:5.1f}%" if r["fraction"] is not None else "  ...  "
            loss = f"loss {r['loss']:.4f}" if r["loss"] is not None else ""
            lines.append(f"  {r['worker'] or '':<6} {r['id']:<44} {pct} {loss} {r['elapsed_s']:.0f}s")
    if s["leaderboard"]:
        lines += ["", f"leaderboard ({s['metric']}, mean over seeds):"]
        for r in s["leaderboard"]:
            lines.append(f"  {r['mean']:.4f} +- {r['stderr']:.4f} ({r['seeds']} seeds)  gen {r['gen']:<4} "
                         f"{r['variant']:<32} {r['mutation']}")
    if s["promotions"]:
        lines += ["", "last promotions:"]
        for p in s["promotions"]:
            lines.append(f"  gen {p['gen']:<4} {p['mutation']}: {p['baseline_mean']:.4f} -> {p['candidate_mean']:.4f}"
                         f"  {p['state']} {(p['commit_sha'] or '')[:10]}")
    return "\n".join(lines)


RUN_COLUMNS = ("id", "status", "metric", "wall_s", "worker", "mutation", "reason")


def runs_table(trials: list[dict]) -> str:
    lines = [f"{'id':<44} {'status':<11} {'metric':>8} {'wall_s':>7} {'worker':<6} change / reason"]
    for t in trials:
        metric = f"{t['metric']:.4f}" if t["metric"] is not None else "-"
        wall = f"{t['wall_s']:.0f}" if t["wall_s"] is not None else "-"
        note = t["reason"] if t["status"] not in ("done", "queued", "running") else (t["mutation"] or "(baseline)")
        lines.append(f"{t['id']:<44} {t['status']:<11} {metric:>8} {wall:>7} {t['worker'] or '-':<6} {note}")
    return "\n".join(lines)


def runs_json(trials: list[dict]) -> str:
    out = []
    for t in trials:
        row = dict(t)
        row["summary"] = json.loads(row["summary"]) if row["summary"] else None
        out.append(row)
    return json.dumps(out, indent=2)
