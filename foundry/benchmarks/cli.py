"""`foundry eval`: score a checkpoint or a Hugging Face folder on benchmark tasks, or score samples.

    foundry eval runs/x --tasks bpb,mmlu,gsm8k --limit 200 --out runs/x/eval.json
    foundry eval /models/gpt2 --tasks humaneval,mmlu --device cuda --json
    foundry eval --samples completions.jsonl --tasks humaneval        # no model: score generations
    foundry eval runs/dpo --tasks preference --path preference=pairs.jsonl --ref runs/base

People get a table on stdout (progress on stderr); --json prints the full report instead, and
--out FILE writes it atomically. The report holds every task's score, centered score, per-item
records and, when weights are known (--rank, else the checkpoint's eval.rank), the rank score.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

from foundry.benchmarks.common import EvalOptions
from foundry.benchmarks.results import (
    format_table,
    parse_weights,
    rank_score,
    write_json,
)
from foundry.benchmarks.tasks import TASKS, run_tasks, task_class
from foundry.config import in_range
from foundry.errors import ArgumentParser, UserError
from foundry.io import check_writable_dir, to_json

# the numeric options and the values they may take ("[a, b]" closed, "(a, b)" open)
CHECKS = {"limit": "[0, 1e9]", "batch_tokens": "[1, 1e9]", "workers": "[1, 1024]", "shots": "[0, 1000]",
          "max_new_tokens": "[1, 1e6]", "timeout": "(0, 86400]", "dpo_beta": "(0, 1000]", "seed": "[0, 4294967295]"}


def build_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(prog="foundry eval", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       epilog=f"tasks: {', '.join(TASKS)}")
    p.add_argument("target", nargs="?", help="Foundry run dir / checkpoint folder, or a Hugging Face model folder")
    p.add_argument("--tasks", help="comma-separated task names (default: the checkpoint's eval.tasks, else bpb)")
    p.add_argument("--limit", type=int, default=0, help="first N items of each task (0 = all)")
    p.add_argument("--shots", type=int, default=None, help="in-context examples (default: each task's own)")
    p.add_argument("--json", action="store_true", help="print the full JSON report instead of a table")
    p.add_argument("--out", help="write the full JSON report to this file (atomically)")
    p.add_argument("--data", help="data folder (default: $FOUNDRY_DATA)")
    p.add_argument("--path", action="append", default=[], metavar="TASK=PATH",
                   help="file or folder for one task, e.g. gsm8k=test.jsonl, mmlu=DIR (repeatable)")
    p.add_argument("--samples", help="score completions from this JSONL instead of a model (gsm8k, humaneval)")
    p.add_argument("--allow-partial", action="store_true",
                   help="--samples: score a HumanEval file that does not cover every problem (not comparable)")
    p.add_argument("--ref", help="reference model for the preference and constitution tasks' DPO reward margin")
    p.add_argument("--rank", help="ranking weights, e.g. mmlu=1,gsm8k=2 (default: the checkpoint's eval.rank)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    p.add_argument("--kind", default="auto", choices=["auto", "foundry", "hf"], help="what TARGET is")
    p.add_argument("--dtype", default="auto", choices=["auto", "fp32", "bf16", "fp16"],
                   help="Hugging Face weights dtype (auto: bf16 on CUDA, fp32 on CPU)")
    p.add_argument("--batch-tokens", type=int, default=8192, help="tokens per forward pass")
    p.add_argument("--max-new-tokens", type=int, default=None, help="generation length (default: the task's)")
    p.add_argument("--timeout", type=float, default=5.0, help="humaneval: wall-clock seconds per sample")
    p.add_argument("--workers", type=int, default=2, help="humaneval: sandboxes run at once")
    p.add_argument("--seed", type=int, default=1234, help="probe generation and shot sampling")
    p.add_argument("--dpo-beta", type=float, default=0.1, help="preference: beta of the DPO reward")
    return p


def _paths(items: list[str]) -> dict:
    paths = {}
    for item in items:
        task, sep, path = item.partition("=")
        if not sep or not path:
            raise UserError(f"--path {item!r}: expected TASK=PATH")
        task_class(task.strip())
        paths[task.strip()] = path
    return paths


def _load(path: str, args):
    from foundry.benchmarks.targets import load_target

    lm = load_target(path, device=args.device, kind=args.kind, dtype=args.dtype)
    lm.batch_tokens = args.batch_tokens
    return lm


def eval_main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    if (args.target is None) == (args.samples is None):
        raise UserError("give exactly one of TARGET (a model to evaluate) or --samples FILE")
    for key, interval in CHECKS.items():
        value = getattr(args, key)
        if value is not None and not in_range(value, interval):   # also refuses nan
            raise UserError(f"--{key.replace('_', '-')}: must be in {interval}, got {value}")
    if args.out:
        check_writable_dir(os.path.dirname(os.path.abspath(args.out)), "--out")
        if os.path.isdir(args.out):
            raise UserError(f"--out {args.out}: is a folder; name the JSON file to write")
    opts = EvalOptions(data_dir=args.data, paths=_paths(args.path), limit=args.limit, shots=args.shots,
                       seed=args.seed, max_new_tokens=args.max_new_tokens, timeout=args.timeout,
                       workers=args.workers, dpo_beta=args.dpo_beta, allow_partial=args.allow_partial)
    log = (lambda msg: print(msg, file=sys.stderr, flush=True))
    start = time.perf_counter()
    weights = parse_weights(args.rank) if args.rank else None
    if args.samples:
        names = args.tasks.split(",") if args.tasks else []
        task = task_class(names[0]) if names else None
        if len(names) != 1 or not hasattr(task, "score_samples"):
            scorable = [n for n, c in TASKS.items() if hasattr(c, "score_samples")]
            raise UserError(f"--samples: name one task that scores samples with --tasks ({', '.join(scorable)})")
        results = {task.name: task(opts).score_samples(args.samples)}
        report = {"samples": args.samples}
    else:
        lm = _load(args.target, args)
        cfg = getattr(lm, "cfg", None)
        names = args.tasks.split(",") if args.tasks else ((list(cfg.eval.tasks) or ["bpb"]) if cfg else None)
        if not names:
            raise UserError("--tasks: name the tasks to run for a Hugging Face model")
        names = [n.strip() for n in names]
        if weights and set(weights) - set(names):  # fail before the work, not after
            raise UserError(f"--rank: weights for tasks not run: {', '.join(sorted(set(weights) - set(names)))}")
        if {"preference", "constitution"} & set(names) and args.ref:
            opts.reference = _load(args.ref, args)
        if weights is None and cfg is not None and cfg.eval.rank and set(cfg.eval.rank) <= set(names):
            weights = dict(cfg.eval.rank)
        results = run_tasks(lm, names, opts, log=log)
        report = {"target": args.target, "kind": type(lm).__name__, "device": lm.device,
                  "block_size": lm.block_size, "tokens_forwarded": lm.tokens_forwarded}
    if weights is None and "bpb" in results:
        weights = {"bpb": 1.0}
    report.update({"tasks": results, "rank": None if weights is None else
                   {"weights": weights, "score": rank_score(results, weights)},
                   "options": {k: v for k, v in vars(args).items() if k not in ("json", "out")},
                   "seconds": round(time.perf_counter() - start, 3)})
    if args.out:
        write_json(report, args.out)
    if args.json:
        print(to_json(report, indent=1, default=str))
    else:
        print(format_table(results))
        if report["rank"]:
            print(f"rank_score: {report['rank']['score']:.6f}")
    return 0
