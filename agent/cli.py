"""`foundry run`, `foundry status`, `foundry runs`, `foundry history`.

    foundry run [--baseline baselines/tiny.yaml] [--campaign NAME] [--generations N | --hours H]
                [--population P] [--workers N|auto] [--proposer random|learned] [--confirm-seeds K]
                [--max-confirm-seeds M] [--alpha A] [--min-delta D] [--equal tokens|flops] ...
                [--gpus-per-trial K] [--backend local|ray [--address auto|local|HOST:PORT]]
    foundry status [--campaign NAME] [--json]      foundry status RUN_DIR [--json]
    foundry runs [--campaign NAME] [--status S] [--gen G] [--variant V] [--limit N] [--json]
    foundry history [--baseline PATH] [--json]

Files of a campaign: experiments/CAMPAIGN/{campaign.yaml, ledger.sqlite, supervisor.log,
supervisor.lock, queue/, gen_NNNN/}. Bad input is one line on stderr and exit code 2.
"""
from __future__ import annotations

import argparse
import glob
import os
import re
import signal

import git

from agent import settings as settings_mod
from agent.code import run_supervised_code, trial_env
from agent.ledger import Ledger
from agent.lock import CampaignLock
from agent.report import (
    next_steps,
    run_folder_status,
    run_folder_table,
    runs_json,
    runs_table,
    status,
    status_table,
)
from foundry.errors import ArgumentParser, UserError
from foundry.io import check_writable_dir, to_json
from foundry.lineage.history import promotions
from foundry.lineage.repo import check_committed, open_repo, relpath
from foundry.runner.backends import add_backend_arguments, open_pool, pool_namespace

FLAGS = {"population": "search.population", "workers": "search.workers", "seed": "search.seed",
         "trial_timeout": "search.trial_timeout_s", "keep_checkpoints": "search.keep_checkpoints",
         "proposer": "search.proposer", "metric": "promotion.metric", "confirm_seeds": "promotion.confirm_seeds",
         "max_confirm_seeds": "promotion.max_confirm_seeds", "min_delta": "promotion.min_delta",
         "alpha": "promotion.alpha", "equal": "promotion.equal", "no_noise_control": "promotion.no_noise_control",
         "proposer_command": "proposer.command",
         "backend": "search.backend", "address": "search.address", "gpus_per_trial": "search.gpus_per_trial",
         "cpus_per_trial": "search.cpus_per_trial"}


def _parser(prog: str, description: str) -> argparse.ArgumentParser:
    return ArgumentParser(prog=f"foundry {prog}", description=description,
                          formatter_class=argparse.RawDescriptionHelpFormatter)


def run_main(argv) -> int:
    p = _parser("run", "The supervisor: mutate the baseline, train variants in parallel, rank them with "
                       "noise-aware statistics and git-commit the winner. Runs until its budget ends "
                       "(no budget: forever); kill it any time and run it again to resume.\n\n"
                       "  foundry run --generations 1 --population 2      # a first, short campaign\n"
                       "  foundry run --hours 8                           # overnight")
    p.add_argument("--baseline", help="baseline config inside a git repository (default: the campaign's, "
                                      "else baselines/tiny.yaml)")
    p.add_argument("--campaign", help="campaign name (default: the baseline's file name)")
    budget = p.add_mutually_exclusive_group()
    budget.add_argument("--generations", type=int, help="stop once the campaign has N generations")
    budget.add_argument("--hours", type=float, help="start no new generation after H hours")
    p.add_argument("--experiments", help="folder of campaigns (default: REPO/experiments)")
    p.add_argument("--population", type=int, help="candidates per generation (default 4)")
    p.add_argument("--workers", help="'auto' (one per GPU, else CPU workers splitting the cores) or N")
    p.add_argument("--seed", type=int, help="base seed; generation g screens with seed + 1000 g")
    p.add_argument("--trial-timeout", type=float, help="seconds before a trial's process group is killed "
                                                       f"(default 7200, at least {settings_mod.MIN_TRIAL_TIMEOUT_S:g})")
    p.add_argument("--keep-checkpoints", choices=settings_mod.CHECKPOINT_POLICIES,
                   help="which checkpoints survive ranking (default baseline: the current baseline's and the "
                        "promoted ones)")
    p.add_argument("--metric", help="summary.json key to rank on (default val_bpb, lower is better)")
    p.add_argument("--higher-is-better", dest="higher_is_better", action="store_const", const=True,
                   help="the metric improves upward (e.g. rank_score from eval.tasks)")
    p.add_argument("--proposer", choices=settings_mod.PROPOSERS,
                   help="who fills the slots queue files and --proposer-command leave (default learned)")
    p.add_argument("--confirm-seeds", type=int, help="fresh seeds confirming the best candidate, >= 2 (default 3)")
    p.add_argument("--max-confirm-seeds", type=int,
                   help="sequential confirmation: add seeds while unclear, up to M (default 6; 0 = off)")
    p.add_argument("--alpha", type=float, help="one-sided level of the paired t-test (default 0.05)")
    p.add_argument("--min-delta", type=float, help="smallest improvement worth a promotion (default 0.001)")
    p.add_argument("--equal", choices=settings_mod.EQUAL_MODES,
                   help="every candidate trains the baseline's tokens (default) or FLOPs")
    p.add_argument("--no-noise-control", dest="no_noise_control", action="store_const", const=True,
                   help="allow --confirm-seeds 0: one screening seed decides (the commit says so)")
    p.add_argument("--proposer-command", help="shell command: leaderboard JSON on stdin, YAML variants out")
    p.add_argument("--gpus-per-trial", type=int, help="devices each trial takes and trains on with as many "
                                                      "processes (DDP/FSDP; CPU workers without GPUs; default 1)")
    add_backend_arguments(p)
    p.add_argument("--cpus-per-trial", type=int, help="with --backend ray: CPUs each trial process asks for (default 1)")
    args = p.parse_args(argv)
    if args.generations is not None and args.generations < 1:
        raise UserError(f"--generations: must be at least 1, got {args.generations}")
    if args.hours is not None and not 0 < args.hours <= 1e6:
        raise UserError(f"--hours: must be in (0, 1e6], got {args.hours}")

    baseline_arg = args.baseline or "baselines/tiny.yaml"
    repo = open_repo(baseline_arg)
    run_supervised_code(repo.working_tree_dir, ["run", *argv])   # the code the ledger fingerprints
    experiments = args.experiments or os.path.join(repo.working_tree_dir, "experiments")
    campaign = args.campaign or os.path.splitext(os.path.basename(baseline_arg))[0]
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", campaign):
        raise UserError(f"--campaign {campaign!r}: use letters, digits, '_', '.', '-'")
    campaign_dir = os.path.join(experiments, campaign)
    settings, baseline_path = _prepare(args, repo, campaign, campaign_dir)   # refusals before any file
    # Start-up: the pool's preloader starts importing torch now, while this process imports it too
    # (to validate the baseline); nothing here has imported torch yet. On Ray this connects to the
    # cluster (no Ray installed: one line saying how, nothing written).
    s = settings.search
    pool = open_pool(s.backend, settings.worker_count(), devices_per_trial=s.gpus_per_trial,
                     cpus_per_trial=s.cpus_per_trial, address=s.address or None, timeout_s=s.trial_timeout_s,
                     cwd=repo.working_tree_dir, namespace=pool_namespace(campaign_dir),
                     env=trial_env(repo.working_tree_dir))   # trials run the repository's code
    pool.warm()
    try:
        _check_baseline(repo, settings, baseline_path)
        check_writable_dir(campaign_dir, "--experiments")
        created = not os.path.isdir(campaign_dir)
        os.makedirs(campaign_dir, exist_ok=True)
        started = False
        try:
            lock = CampaignLock(os.path.join(campaign_dir, "supervisor.lock")).acquire()  # before touching anything
            try:
                settings, baseline_path = _prepare(args, repo, campaign, campaign_dir)   # as the files are now
                _check_baseline(repo, settings, baseline_path)
                settings_mod.save(settings, os.path.join(campaign_dir, "campaign.yaml"))
                started = True
                return _supervise(args, repo, campaign_dir, settings, baseline_path, lock, pool)
            finally:
                lock.release()
        finally:
            if created and not started and not os.listdir(campaign_dir):
                os.rmdir(campaign_dir)   # a refused first run leaves no campaign folder
    finally:
        pool.close()


def _prepare(args, repo, campaign: str, campaign_dir: str):
    """(settings, baseline path) from campaign.yaml and the flags, checked; writes nothing."""
    settings_path = os.path.join(campaign_dir, "campaign.yaml")
    overrides = {dotted: getattr(args, flag) for flag, dotted in FLAGS.items() if getattr(args, flag) is not None}
    if args.higher_is_better:
        overrides["promotion.lower_is_better"] = False
    flag_names = {dotted: f"--{flag.replace('_', '-')}" for flag, dotted in FLAGS.items() if dotted in overrides}
    settings = settings_mod.load(settings_path, overrides, flag_names)
    if args.baseline:
        rel = relpath(repo, args.baseline)
        if os.path.exists(settings_path) and settings.baseline != rel:
            raise UserError(f"{settings_path}: campaign {campaign} runs {settings.baseline}, not {rel}; "
                            "pick another --campaign")
        settings.baseline = rel
    return settings, os.path.join(repo.working_tree_dir, settings.baseline)


def _check_baseline(repo, settings, baseline_path: str) -> None:
    """A baseline that does not validate, fit or is not committed, or a bad promotion.transfer: one line, exit 2."""
    from agent import transfer
    from foundry.catalog import check_fits, load   # imports torch: after the preloader has started
    baseline = load(baseline_path)
    check_fits(baseline)
    if settings.promotion.transfer:   # a bad promotion.transfer fails now, not after hours of training
        transfer.scaled(baseline, settings.promotion.transfer)
    check_committed(repo, settings.baseline)


def _supervise(args, repo, campaign_dir: str, settings, baseline_path: str, lock: CampaignLock, pool) -> int:
    from agent.loop import Supervisor
    from agent.view import View
    view = View(os.path.join(campaign_dir, "supervisor.log"))
    if lock.took_over_pid:
        view.log(f"took over a stale lock of pid {lock.took_over_pid} (that supervisor is gone)")
    sup = Supervisor(repo, baseline_path, campaign_dir, settings, view, pool=pool)
    previous = {s: signal.signal(s, sup.request_stop) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        code = sup.run(generations=args.generations, hours=args.hours)
        print(next_steps(sup.ledger, campaign_dir, baseline_path), flush=True)
        return code
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        sup.ledger.close()
        view.close()


def _campaign_dir(args) -> str:
    """--campaign under --experiments; without --campaign, the most recently active campaign."""
    if args.experiments:
        experiments = args.experiments
    else:
        try:
            experiments = os.path.join(git.Repo(".", search_parent_directories=True).working_tree_dir, "experiments")
        except (git.InvalidGitRepositoryError, git.NoSuchPathError):
            experiments = "experiments"
    if args.campaign:
        path = os.path.join(experiments, args.campaign)
        if not os.path.exists(os.path.join(path, "ledger.sqlite")):
            raise UserError(f"{path}: no campaign ledger there (has `foundry run --campaign {args.campaign}` run?)")
        return path
    ledgers = glob.glob(os.path.join(experiments, "*", "ledger.sqlite"))
    if not ledgers:
        raise UserError(f"{experiments}: no campaigns yet; start one with `foundry run`")
    return os.path.dirname(max(ledgers, key=os.path.getmtime))


def _campaign_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--campaign", help="campaign name (default: the most recently active one)")
    p.add_argument("--experiments", help="folder of campaigns (default: REPO/experiments)")
    p.add_argument("--json", action="store_true", help="machine-readable output")


def status_main(argv) -> int:
    p = _parser("status", "What a campaign is doing now: generation, running trials with progress (and "
                          "whether their processes live), leaderboard, last promotions, throughput. Given a "
                          "run folder (foundry train --out DIR), what that run is doing.\n\n"
                          "  foundry status\n  foundry status runs/tiny-1a2b3c4d5e6f")
    p.add_argument("run", nargs="?", help="a run folder instead of a campaign")
    _campaign_args(p)
    args = p.parse_args(argv)
    if args.run:
        if not os.path.isdir(args.run):
            raise UserError(f"{args.run}: no such run folder")
        data = run_folder_status(args.run)
        print(to_json(data, indent=2) if args.json else run_folder_table(data))
        return 0
    campaign_dir = _campaign_dir(args)
    s = settings_mod.load(os.path.join(campaign_dir, "campaign.yaml"))
    ledger = Ledger(os.path.join(campaign_dir, "ledger.sqlite"), readonly=True)
    try:
        data = status(ledger, campaign_dir, s.promotion.metric, s.promotion.lower_is_better)
    finally:
        ledger.close()
    print(to_json(data, indent=2) if args.json else status_table(data))
    return 0


def runs_main(argv) -> int:
    p = _parser("runs", "Query the trials of a campaign's ledger.")
    _campaign_args(p)
    p.add_argument("--status", action="append", metavar="STATUS",
                   choices=("queued", "running", "done", "failed", "diverged", "timeout", "interrupted"),
                   help="queued, running, done, failed, diverged, timeout, interrupted (repeatable)")
    p.add_argument("--gen", type=int, action="append", help="generation number (repeatable)")
    p.add_argument("--variant", action="append", help="variant name, e.g. baseline (repeatable)")
    p.add_argument("--role", choices=("screen", "confirm", "transfer"),
                   help="screening trials, confirmation seeds or transfer checks")
    p.add_argument("--limit", type=int, help="at most N rows (newest first)")
    args = p.parse_args(argv)
    if args.limit is not None and args.limit < 1:
        raise UserError(f"--limit: must be at least 1, got {args.limit}")
    ledger = Ledger(os.path.join(_campaign_dir(args), "ledger.sqlite"), readonly=True)
    try:
        order = "gen DESC, id" if args.limit else "gen, id"
        rows = ledger.trials(limit=args.limit, order=order, status=args.status, gen=args.gen,
                             variant=args.variant, role=args.role)
    finally:
        ledger.close()
    print(runs_json(rows) if args.json else runs_table(rows))
    return 0


def history_main(argv) -> int:
    p = _parser("history", "The lineage of promoted baselines, read from git log: generation, change, "
                           "metric before and after, commit.")
    p.add_argument("--baseline", help="only promotions of this baseline file")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    args = p.parse_args(argv)
    repo = open_repo(args.baseline or os.getcwd())
    entries = promotions(repo, relpath(repo, args.baseline) if args.baseline else None)
    if args.json:
        print(to_json(entries, indent=2))
        return 0
    if not entries:
        print("no promotions yet")
    for e in entries:
        print(f"{e['commit'][:10]}  {e['campaign']}/gen {e['generation']:<4} {e['baseline']:<28} "
              f"{e['metric']} {e['before']:.4f} -> {e['after']:.4f} ({100 * e['relative']:+.1f}%)  {e['change']}")
    return 0
