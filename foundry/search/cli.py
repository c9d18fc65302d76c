"""The search subcommands: `foundry sweep`, `foundry compare`, `foundry lr-find`, `foundry evolve`.

    foundry sweep attention mha gqa_1kv mla --jobs 2                 # full budget, one seed each
    foundry sweep lr:x0.5 lr:x2 depth:plus1 --asha --seeds 2 --promote
    foundry compare baselines/tiny.yaml experiments/lr_x2.yaml --seeds 3
    foundry lr-find baselines/tiny.yaml --out experiments/lr_find
    foundry evolve --baseline baselines/tiny.yaml --cycles 20 --population 8 --sample 3

Each is `xxx_main(argv) -> exit code`; bad input raises UserError (exit 2 from foundry.cli).
"""
from __future__ import annotations

import argparse
import json


def _workers(text: str):
    from foundry.errors import UserError
    from foundry.search.pool import plan_workers
    if text != "auto" and not text.isdigit():
        raise UserError(f"--jobs: expected a positive number or 'auto', got {text!r}")
    try:
        return plan_workers("auto" if text == "auto" else int(text))
    except ValueError as e:
        raise UserError(f"--jobs: {e}") from None


def _parser(prog: str, description: str) -> argparse.ArgumentParser:
    return argparse.ArgumentParser(prog=f"foundry {prog}", description=description,
                                   formatter_class=argparse.ArgumentDefaultsHelpFormatter)


def sweep_main(argv: list[str]) -> int:
    from foundry.search import sweep
    p = _parser("sweep", "Train mutations of a baseline in parallel (optionally with ASHA), rank them "
                         "against the baseline, optionally promote the winner. Re-run the same command "
                         "to resume an interrupted sweep.")
    p.add_argument("targets", nargs="+", metavar="TYPE VARIANT... | TYPE:VARIANT...",
                   help="a mutation type and some of its variants (none = all), or type:variant labels")
    p.add_argument("--baseline", default="baselines/tiny.yaml")
    p.add_argument("--dir", help="search folder (default: experiments/sweeps/BASELINE-HASH of the request)")
    p.add_argument("--jobs", default="auto", help="parallel workers: N or auto (one per GPU / split CPU cores)")
    p.add_argument("--seeds", type=int, help="seeds per ranked trial at the full budget (default 1; 2 with --asha)")
    p.add_argument("--eval-task", help="rank by this benchmark task's score instead of val_bpb")
    p.add_argument("--asha", action="store_true", help="successive halving over token rungs, then deep confirmation")
    p.add_argument("--grace", type=int, default=0, help="ASHA first-rung tokens (0 = max / eta^2)")
    p.add_argument("--eta", type=float, default=3.0, help="ASHA reduction factor")
    p.add_argument("--max-budget", type=int, default=0, help="ASHA last-rung tokens (0 = the baseline's budget)")
    p.add_argument("--top-k", type=int, default=2, help="trials confirmed at the full budget after ASHA")
    p.add_argument("--timeout", type=float, help="per-trial wall-clock limit in seconds")
    p.add_argument("--skip-invalid", action="store_true", help="drop variants that do not apply instead of failing")
    p.add_argument("--promote", action="store_true", help="commit the winner as the new baseline if it beats "
                                                           "the baseline beyond noise (agent/promotion.py)")
    p.add_argument("--min-delta", type=float, default=0.001, help="promotion: smallest improvement that counts")
    p.add_argument("--z", type=float, default=2.0, help="promotion: improvement must exceed z x its standard error")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    args = p.parse_args(argv)
    from foundry.errors import UserError
    labels = sweep.parse_targets(args.targets)
    asha = sweep.AshaOptions(args.grace, args.eta, args.max_budget, args.top_k) if args.asha else None
    seeds = args.seeds or (2 if args.asha else 1)
    if seeds < 1 or args.top_k < 1 or args.eta <= 1:
        raise UserError("--seeds and --top-k must be positive and --eta above 1")
    if args.promote and seeds < 2:
        raise UserError("--promote needs --seeds 2 or more: one run per config cannot tell a gain from noise")
    old_hash = sweep.check_promotable(args.baseline) if args.promote else None
    search_dir = args.dir or sweep.default_dir(args.baseline, labels, asha, seeds)
    log = (lambda *a, **k: None) if args.json else print
    report = sweep.run_sweep(args.baseline, labels, search_dir, _workers(args.jobs), asha, seeds,
                             args.eval_task, args.skip_invalid, args.timeout, log=log)
    if args.promote:
        report["promotion"] = sweep.promote_winner(report, args.baseline, old_hash, args.min_delta, args.z, log=log)
    print(json.dumps(report, indent=2) if args.json else sweep.format_report(report))
    return 0
