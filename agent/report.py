"""What `foundry status` and `foundry runs` show, read from a campaign's ledger (read-only, so
they work while the supervisor writes). Dicts for --json; tables for people.

    data = status(Ledger(path, readonly=True), campaign_dir)
    print(status_table(data))
    print(run_folder_table(run_folder_status("runs/x")))     # `foundry status RUN_DIR`
    print(next_steps(ledger, campaign_dir, baseline_path))   # what `foundry run` prints at its end
"""
from __future__ import annotations

import json
import os
import time

from agent.lock import pid_alive, read_pid
from foundry.config import config_hash, to_dict
from foundry.io import read_progress, read_summary, run_status, to_json
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
                     "stderr": stats.stderr(values) if len(values) > 1 else None, "seeds": len(values)})
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
        run_dir = os.path.join(root, t["run_dir"])
        progress = read_progress(run_dir)
        alive = pid_alive(t["pid"]) and run_status(run_dir) in ("running", "none")
        running.append({"id": t["id"], "worker": t["worker"], "device": t["device"],
                        "elapsed_s": time.time() - (t["started_at"] or time.time()),
                        "fraction": progress.get("fraction"), "step": progress.get("step"),
                        "loss": progress.get("loss"), "pid": t["pid"], "alive": bool(alive)})
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
            state = "" if r["alive"] else f"  dead (pid {r['pid']} is gone)"
            lines.append(f"  {r['worker'] or '':<6} {r['id']:<44} {pct} {loss} {r['elapsed_s']:.0f}s{state}")
    if s["leaderboard"]:
        lines += ["", f"leaderboard ({s['metric']}, mean over seeds):"]
        for r in s["leaderboard"]:
            spread = f"+- {r['stderr']:.4f} ({r['seeds']} seeds)" if r["seeds"] > 1 else f"{'(1 seed)':<20}"
            lines.append(f"  {r['mean']:.4f} {spread}  gen {r['gen']:<4} {r['variant']:<32} {r['mutation']}")
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
    return to_json(out, indent=2)


def run_folder_status(run_dir: str) -> dict:
    """A run folder's state for `foundry status RUN_DIR`: status (dead when its process is gone),
    progress, and the summary's key figures once it has one."""
    progress, summary = read_progress(run_dir), read_summary(run_dir) or {}
    keys = ("val_loss", "val_bpb", "train_tokens", "tokens_per_s", "wall_s", "config_hash")
    return {"run": run_dir, "status": run_status(run_dir), "step": progress.get("step"),
            "max_steps": progress.get("max_steps"), "fraction": progress.get("fraction"),
            "loss": progress.get("loss"), "pid": progress.get("pid"),
            "updated_at": progress.get("updated_at"), "summary": {k: summary.get(k) for k in keys if k in summary}}


def run_folder_table(r: dict) -> str:
    step = f"step {r['step']}" + (f"/{r['max_steps']}" if r["max_steps"] else "") if r["step"] is not None else ""
    pct = f" ({100 * r['fraction']:.1f}%)" if r["fraction"] is not None else ""
    loss = f", loss {r['loss']:.4f}" if isinstance(r["loss"], (int, float)) else ""
    why = {"dead": f" (pid {r['pid']} is gone: killed or crashed; `foundry train ... --resume` continues it)",
           "running": f" (pid {r['pid']})", "none": " (nothing written yet)"}.get(r["status"], "")
    lines = [f"{r['run']}: {r['status']}{why}", f"  {step}{pct}{loss}".rstrip()]
    lines += [f"  {k}: {v:.6g}" if isinstance(v, float) else f"  {k}: {v}" for k, v in r["summary"].items()]
    return "\n".join(line for line in lines if line.strip())


def kept_checkpoint(ledger, root: str, baseline_hash: str) -> str | None:
    """The run folder of the newest trial of the current baseline whose checkpoint was kept, else of
    any trial whose checkpoint was kept; None when every checkpoint was deleted."""
    trials = sorted(ledger.trials(status="done"), key=lambda t: (t["gen"], t["role"] == "screen"), reverse=True)
    kept = [t for t in trials if os.path.isdir(os.path.join(root, t["run_dir"], "checkpoint"))]
    best = next((t for t in kept if t["config_hash"] == baseline_hash), kept[0] if kept else None)
    return os.path.join(root, best["run_dir"]) if best else None


def next_steps(ledger, campaign_dir: str, baseline_path: str) -> str:
    """The lines `foundry run` ends with: what to look at next, and where the files are."""
    from foundry.catalog import load
    root = ledger.get_meta("root", ".")
    campaign = os.path.basename(os.path.abspath(campaign_dir))
    run = kept_checkpoint(ledger, root, config_hash(load(baseline_path)))

    def here(path: str) -> str:
        relative = os.path.relpath(path)
        return relative if not relative.startswith("..") else path
    lines = ["", "next:",
             f"  foundry status --campaign {campaign}      the leaderboard, decisions and promotions",
             f"  foundry runs --campaign {campaign}        every trial with its status and metric",
             "  foundry history                    promotions committed to git"]
    if run:
        lines += [f"  foundry sample {here(run)} --prompt 'def '",
                  f"  foundry eval {here(run)} --tasks bpb"]
    else:
        lines.append("  (no checkpoint kept: --keep-checkpoints baseline keeps the current baseline's)")
    lines.append(f"files: {here(campaign_dir)} (supervisor.log, ledger.sqlite, gen_NNNN/runs/TRIAL/)")
    return "\n".join(lines)
