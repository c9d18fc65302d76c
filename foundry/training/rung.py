"""Train one ASHA rung: `foundry train` that pauses after N tokens of a longer run.

    foundry train-rung CONFIG [key=value ...] --out DIR [--resume] --stop-at-tokens N
    python -m foundry.training.cli train-rung ...      # the same, without the rest of foundry

The config's budget (the search's full budget) sets the learning-rate schedule; the run stops
once it has trained N tokens, evaluates, checkpoints, and reports status `done` with
`rung_stop: true` in summary.json. Resuming with a larger N continues the very same run, so a
trial promoted to the last rung ends exactly where a run trained to the full budget in one go
would (same schedule, data order and optimizer state). Exit codes as `foundry train`.
"""
from __future__ import annotations

import argparse
import json
import os
import traceback

from foundry.catalog import load
from foundry.config import config_hash
from foundry.errors import UserError
from foundry.io import atomic_write_text
from foundry.training.run_files import EXIT_CODES


def rung_train_main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="foundry train-rung", description=__doc__.split("\n\n")[0])
    p.add_argument("config")
    p.add_argument("overrides", nargs="*")
    p.add_argument("--out", required=True)
    p.add_argument("--resume", action="store_true")
    p.add_argument("--stop-at-tokens", type=int, required=True, help="pause once this many tokens are trained")
    p.add_argument("--nproc", type=int, default=1, help="processes that train this run together (torchrun)")
    args = p.parse_intermixed_args(argv)
    cfg = load(args.config, args.overrides)
    stop_steps = -(-args.stop_at_tokens // cfg.tokens_per_step)
    if not args.resume and os.path.exists(os.path.join(args.out, "checkpoint")):
        raise UserError(f"{args.out}: already holds a run; pass --resume")
    if args.nproc != 1:
        from foundry.training.launch import launch, without_nproc
        return launch("train-rung", without_nproc(argv), args.nproc, cfg, args.out)
    from foundry.training.loop import train
    try:
        summary = train(cfg, args.out, resume=args.resume, stop_after_steps=stop_steps)
    except UserError:
        raise
    except Exception as e:  # a crash in model code: record it like `foundry train` does
        from foundry.training.launch import rank_prefix
        failed = {"status": "failed", "error": f"{rank_prefix()}{type(e).__name__}: {e}", "config_hash": config_hash(cfg)}
        if os.path.isdir(args.out):
            atomic_write_text(os.path.join(args.out, "summary.json"), json.dumps(failed, indent=2) + "\n")
        traceback.print_exc()
        return 1
    if summary["status"] == "interrupted" and summary["steps"] >= stop_steps:
        summary.update(status="done", rung_stop=True)  # paused on purpose, not by a signal
        if os.environ.get("RANK", "0") == "0":   # under torchrun rank 0 writes the run folder
            atomic_write_text(os.path.join(args.out, "summary.json"), json.dumps(summary, indent=2) + "\n")
    return EXIT_CODES[summary["status"]]

