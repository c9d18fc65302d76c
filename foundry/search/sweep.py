"""`foundry sweep`: train mutations of a baseline in parallel, rank them, optionally promote.

    report = run_sweep("baselines/tiny.yaml", ["lr:x2", "depth:plus1"], "experiments/sweeps/x",
                       workers=plan_workers(2), asha=AshaOptions(grace=50_000, eta=3))
    report = run_sweep(..., backend="ray", address="auto")   # trials on a Ray cluster (runner/backends.py)

Every variant (and the baseline itself, as the reference) is a trial. Without ASHA every trial
trains to the config's full budget with `seeds` seeds. With ASHA, trials climb rungs of the
token budget and the top_k plus the baseline are confirmed at the full budget over `seeds`
seeds (asha.py). Everything lives in DIR: configs/, runs/, and ledger.sqlite, the search ledger
(ledger.py: every trial, rung job and result, saved after every event) — run the same command
again and it carries on from its rungs.
"""
from __future__ import annotations

import hashlib
import os
import sys
from dataclasses import asdict, dataclass

from foundry.catalog import load
from foundry.config import dumps
from foundry.errors import UserError
from foundry.io import atomic_write_text
from foundry.lineage.promotion import PromotionConflict, build_promotion, promote
from foundry.lineage.repo import (
    check_committed,
    head_text,
    open_repo,
    relpath,
    text_hash,
)
from foundry.mutate import apply, parse_label
from foundry.runner.backends import open_pool, pool_namespace
from foundry.runner.driver import drive
from foundry.runner.pool import TrialSpec, WorkerPool
from foundry.search import stats, trials
from foundry.search.asha import AshaSearch, rung_budgets
from foundry.search.ledger import SearchLedger

RUNG_TRAIN_COMMAND = [sys.executable, "-m", "foundry.training.cli", "train-rung"]
LEDGER = "ledger.sqlite"


@dataclass
class AshaOptions:
    grace: int = 0          # tokens of the first rung; 0 = max_budget / eta^2 (three rungs)
    eta: float = 3.0
    max_budget: int = 0     # tokens of the last rung; 0 = the baseline's own budget
    top_k: int = 2
    confirm_baseline: bool = True  # also run the baseline at the full budget over the seeds (for Δ and --promote)


def parse_targets(items: list[str]) -> list[str]:
    """['attention', 'mha', 'mla'] or ['lr:x2', 'depth:plus1'] -> labels; a bare TYPE = all its variants."""
    from foundry.mutate import MUTATIONS, check
    if not items:
        raise UserError("give a mutation TYPE and VARIANTs, or TYPE:VARIANT labels")
    if all(":" in item for item in items):
        return [f"{t}:{v}" for t, v in map(parse_label, items)]
    mutation_type, variants = items[0], items[1:]
    if mutation_type not in MUTATIONS:
        raise UserError(f"unknown mutation type {mutation_type!r} (valid: {', '.join(MUTATIONS)})")
    for variant in variants:
        check(mutation_type, variant)
    return [f"{mutation_type}:{v}" for v in (variants or MUTATIONS[mutation_type][1])]


def build_trials(baseline_path: str, labels: list[str], search_dir: str, skip_invalid: bool) -> list[dict]:
    """Write the baseline and each variant to DIR/configs; trial 0 is the baseline."""
    base = load(baseline_path)
    configs = [("baseline", base)]
    for lab in labels:
        try:
            configs.append((lab, apply(base, *parse_label(lab))))
        except UserError:
            if not skip_invalid:
                raise
    out = []
    for i, (lab, cfg) in enumerate(configs):
        trial_id = f"t{i:02d}-{lab.replace(':', '_')}"
        path = os.path.join(search_dir, "configs", f"{trial_id}.yaml")
        atomic_write_text(path, dumps(cfg))
        out.append({"id": trial_id, "label": lab, "config": path, "seed": cfg.train.seed})
    return out


def default_dir(baseline_path: str, labels: list[str], asha: AshaOptions | None, seeds: int) -> str:
    key = repr((os.path.abspath(baseline_path), labels, asdict(asha) if asha else None, seeds))
    return os.path.join("experiments", "sweeps", f"{os.path.splitext(os.path.basename(baseline_path))[0]}-"
                        f"{hashlib.sha1(key.encode()).hexdigest()[:8]}")


def _new_search(baseline_path, labels, search_dir, asha, seeds, skip_invalid) -> AshaSearch:
    entries = build_trials(baseline_path, labels, search_dir, skip_invalid)
    full = trials.full_budget_tokens(load(baseline_path))
    if asha is None:  # one rung at the full budget; every trial "confirmed" with all seeds
        return AshaSearch([full], 3, entries, top_k=len(entries), seeds=seeds, always_confirm=())
    max_budget = asha.max_budget or full
    grace = asha.grace or max(1, int(max_budget / asha.eta ** 2))
    return AshaSearch(rung_budgets(grace, asha.eta, max_budget), asha.eta, entries, asha.top_k, seeds,
                      always_confirm=("baseline",) if asha.confirm_baseline else ())


def run_sweep(baseline_path: str, labels: list[str], search_dir: str, workers, asha: AshaOptions | None = None,
              seeds: int = 1, eval_task: str | None = None, skip_invalid: bool = False,
              timeout_s: float | None = None, log=print, command: list[str] | None = None,
              backend: str = "local", address: str | None = None, devices_per_trial: int = 1) -> dict:
    request = {"baseline": os.path.abspath(baseline_path), "labels": labels,
               "asha": asdict(asha) if asha else None, "seeds": seeds, "eval_task": eval_task}
    os.makedirs(search_dir, exist_ok=True)
    ledger = SearchLedger(os.path.join(search_dir, LEDGER))
    if ledger.request() is None and os.path.exists(os.path.join(search_dir, "search.json")):
        ledger.import_json(os.path.join(search_dir, "search.json"))
    saved_request = ledger.request()
    if saved_request not in (None, request):
        ledger.close()
        raise UserError(f"{search_dir}: holds a different search ({saved_request}); choose another --dir")
    search = ledger.load()
    if search is not None:
        log(f"resuming the search in {search_dir}: {sum(j['status'] != 'running' for j in search.jobs)} jobs done")
    else:
        search = _new_search(baseline_path, labels, search_dir, asha, seeds, skip_invalid)
    log(f"{len(search.trials)} trials, rungs {search.budgets} tokens, {len(workers)} workers -> {search_dir}")
    runs_dir = os.path.join(search_dir, "runs")

    def next_spec():
        job = search.next_job()
        if job is None:
            return None
        run_dir = os.path.join(runs_dir, job["run"])
        # the full budget sets the schedule; the rung pauses the run after job["budget"] tokens
        overrides = trials.budget_overrides(search.budgets[-1]) + [f"train.seed={job['seed']}",
                                                                   f"--stop-at-tokens={job['budget']}"]
        resume = os.path.isdir(os.path.join(run_dir, "checkpoint"))
        return TrialSpec(job["id"], job["config"], run_dir, overrides, resume=resume)

    def on_finished(spec, result):
        try:
            value = trials.objective(result.summary, spec.out_dir, eval_task) if result.status == "done" else None
        except (RuntimeError, KeyError, ValueError) as e:
            value, result.reason = None, str(e)
        search.report(spec.trial_id, value, trials.run_record(result.summary, spec.out_dir))
        shown = "-" if value is None else f"{-value if eval_task else value:.4f}"
        log(f"  done   {spec.trial_id}: {eval_task or 'val_bpb'} {shown} ({result.status}"
            + (f": {result.reason}" if result.reason else "") + ")")

    # trials fork from the pool's per-worker preloader (torch imported once) unless a test swaps the command
    if backend == "local":
        pool = WorkerPool(workers, timeout_s=timeout_s, command=command or RUNG_TRAIN_COMMAND, preload=command is None,
                          devices_per_trial=devices_per_trial)
    else:
        pool = open_pool(backend, address=address, devices_per_trial=devices_per_trial, timeout_s=timeout_s,
                         command=command or RUNG_TRAIN_COMMAND, cwd=os.getcwd(), namespace=pool_namespace(search_dir))
    try:
        drive(pool, next_spec, on_finished, lambda: ledger.save(request, search), log)
    finally:
        ledger.close()
    return summarize(search, eval_task, search_dir)


def summarize(search: AshaSearch, eval_task: str | None, search_dir: str) -> dict:
    """The final ranking: per confirmed trial its mean over seeds, spread, difference to the baseline."""
    jobs_at_top = {}
    for job in search.jobs:
        if job["status"] == "done" and job["budget"] == search.budgets[-1]:
            jobs_at_top.setdefault(job["trial"], []).append(job["record"])
    rows, baseline = [], None
    confirmed = search.confirmation()
    for row in confirmed:
        if row["label"] == "baseline":
            baseline = [v for v in row["objectives"] if v is not None]
    for row in confirmed:
        records = jobs_at_top.get(row["trial"], [])
        sign = -1 if eval_task else 1
        entry = {"label": row["label"], "trial": row["trial"], "n": row["n"], "stdev": row["stdev"],
                 "metric": None if row["mean"] is None else sign * row["mean"],
                 "values": [None if v is None else sign * v for v in row["objectives"]]}
        for key in ("val_loss", "tokens_per_s", "train_flops", "qpc"):
            values = [r[key] for r in records if r.get(key) is not None]
            entry[key] = stats.mean(values) if values else None
        ok = [v for v in row["objectives"] if v is not None]
        if baseline and ok and row["label"] != "baseline":
            d = stats.difference(baseline, ok)
            entry["delta"] = sign * (d.candidate_mean - d.baseline_mean)
            entry["significant"] = False
            if len(baseline) >= 2 and len(ok) >= 2:  # one run per side says nothing about the noise
                lo, hi = d.interval(0.95)  # of the improvement baseline - candidate (objective units)
                entry["ci95"] = sorted([sign * -hi, sign * -lo])
                entry["significant"] = d.significant
        rows.append(entry)
    winner = search.winner()
    return {"dir": search_dir, "metric": eval_task or "val_bpb", "lower_is_better": eval_task is None,
            "budgets": search.budgets,
            "total_flops": search.total_flops(), "total_tokens": sum(j["tokens"] for j in search.jobs),
            "jobs": len(search.jobs), "leaderboard": search.leaderboard(), "ranking": rows,
            "winner": winner and winner["label"]}


def format_report(report: dict) -> str:
    metric = report["metric"]
    columns = [("label", "variant", ""), ("metric", metric, ".4f"), ("stdev", "± sd", ".4f"), ("n", "seeds", ""),
               ("delta", "Δ vs base", "+.4f"), ("val_loss", "val_loss", ".4f"), ("tokens_per_s", "tok/s", ".0f"),
               ("train_flops", "FLOPs", ".3g"), ("qpc", "QPC", ".3g")]
    lines = [trials.table(report["ranking"], columns), "",
             f"winner: {report['winner']}   total compute: {report['total_flops']:.3g} FLOPs, "
             f"{report['total_tokens']:,} tokens in {report['jobs']} jobs (rungs {report['budgets']})"]
    return "\n".join(lines)


def check_promotable(baseline_path: str) -> str:
    """Fail before any training if the baseline cannot be promoted over; returns its content hash."""
    repo = open_repo(baseline_path)
    rel = relpath(repo, baseline_path)
    check_committed(repo, rel)
    return text_hash(head_text(repo, rel))


def promote_winner(report: dict, baseline_path: str, old_hash: str, min_delta: float = 0.001,
                   alpha: float = 0.05, log=print) -> str | None:
    """Commit the winner as the new baseline if it beats the baseline by more than the noise.

    `report["ranking"]` holds metric values as reported (val_bpb, or a task score) and
    `report["lower_is_better"]` says which way is better (summarize sets it). Uses the supervisor's promotion (foundry/lineage/promotion.py): one
    commit holding only the baseline file. Returns the sha, or None for a near-miss or when the
    baseline itself won.
    """
    rows = {r["label"]: r for r in report["ranking"]}
    winner = rows.get(report["winner"])
    if winner is None or winner["label"] == "baseline" or "baseline" not in rows:
        log("promotion: the baseline is still the best; nothing to promote")
        return None
    base_values = [v for v in rows["baseline"]["values"] if v is not None]
    cand_values = [v for v in winner["values"] if v is not None]
    d = stats.difference(base_values, cand_values, alpha=alpha, min_delta=min_delta,
                         lower_is_better=report["lower_is_better"])
    test = d.summary(min_delta)
    if not d.significant:
        log(f"promotion: near-miss for {winner['label']}: {test}")
        return None
    base, cand = load(baseline_path), load(os.path.join(report["dir"], "configs", f"{winner['trial']}.yaml"))
    repo = open_repo(baseline_path)
    ledger = SearchLedger(os.path.join(report["dir"], LEDGER))
    seeds = ledger.load().confirm
    ledger.close()
    seed_list = seeds.get(winner["trial"], []) if seeds else []
    promotion = build_promotion(
        repo, relpath(repo, baseline_path), f"sweep/{os.path.basename(os.path.normpath(report['dir']))}", base, cand,
        winner["label"], report["metric"], d, list(zip(seed_list, rows["baseline"]["values"], winner["values"])),
        [rows["baseline"]["trial"], winner["trial"]], f"sweep {report['dir']}", 0, test)
    if promotion.old_hash != old_hash:
        raise PromotionConflict(f"{baseline_path}: changed since the sweep began; not promoting over it")
    sha = promote(repo, promotion)
    log(f"promotion: {winner['label']} committed as {promotion.rel_path} ({sha[:10]}): {test}")
    return sha
