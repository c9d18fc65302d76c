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

import os
import traceback

from foundry.catalog import load
from foundry.config import config_hash
from foundry.errors import ArgumentParser, UserError
from foundry.io import check_writable_dir, write_json
from foundry.training.run_files import EXIT_CODES


def rung_train_main(argv: list[str]) -> int:
    p = ArgumentParser(prog="foundry train-rung", description=__doc__.split("\n\n")[0])
    p.add_argument("config", help="YAML config of the whole run")
    p.add_argument("overrides", nargs="*", default=[], metavar="KEY=VALUE", help="optional dotted overrides")
    p.add_argument("--out", required=True, help="run folder, shared by the rungs of one trial")
    p.add_argument("--resume", action="store_true", help="continue from the folder's checkpoint (the previous rung)")
    p.add_argument("--stop-at-tokens", type=int, required=True, help="pause once this many tokens are trained")
    p.add_argument("--nproc", type=int, default=1, help="processes that train this run together (torchrun)")
    args = p.parse_intermixed_args(argv)
    if args.stop_at_tokens < 1:
        raise UserError(f"--stop-at-tokens: must be positive, got {args.stop_at_tokens}")
    cfg = load(args.config, args.overrides)
    check_writable_dir(args.out)
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
            write_json(os.path.join(args.out, "summary.json"), failed)
        traceback.print_exc()
        return 1
    if summary["status"] == "interrupted" and summary["steps"] >= stop_steps:
        summary.update(status="done", rung_stop=True)  # paused on purpose, not by a signal
        if os.environ.get("RANK", "0") == "0":   # under torchrun rank 0 writes the run folder
            write_json(os.path.join(args.out, "summary.json"), summary)
    return EXIT_CODES[summary["status"]]

