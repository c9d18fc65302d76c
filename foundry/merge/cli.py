"""`foundry merge RECIPE.yaml --out DIR`: run a mergekit-format recipe (see foundry/merge/recipe.py).

    foundry merge merge.yaml --out runs/merged              # progress bar, then a summary
    foundry merge merge.yaml --out runs/merged --dry-run    # check, plan and list; write nothing
    foundry merge merge.yaml --out runs/merged --json       # the summary as JSON (also OUT/merge.json)
    foundry merge --methods                                 # the methods and their parameters

Bad input (unknown keys or methods, missing parameters or files, models of different shapes)
exits 2 with one line naming the key or file, and leaves no output folder.
"""
from __future__ import annotations

import argparse
import json
import sys
import time

from foundry.errors import ArgumentParser

SHOWN = ("method", "out", "format", "tensors", "params", "n_layer", "seed", "seconds", "merge_seconds",
         "hash_seconds", "peak_rss_mb", "peak_private_mb", "largest_tensor_mb")


class Progress:
    """A bar redrawn in place on a terminal; a line every 10% otherwise."""

    def __init__(self, stream=None):
        self.stream = stream or sys.stderr
        self.tty, self.shown, self.start = self.stream.isatty(), -1, time.perf_counter()

    def __call__(self, done: int, total: int, name: str) -> None:
        if self.tty:
            filled = int(30 * done / total)
            self.stream.write(f"\r[{'#' * filled}{'.' * (30 - filled)}] {done}/{total} "
                              f"{time.perf_counter() - self.start:5.1f}s {name[:40]:<40}")
            if done == total:
                self.stream.write("\n")
        elif done * 10 // total > self.shown:
            self.shown = done * 10 // total
            self.stream.write(f"merged {done}/{total} tensors ({time.perf_counter() - self.start:.1f}s)\n")
        self.stream.flush()


def methods_text() -> str:
    from foundry.merge import METHODS
    lines = []
    for name, m in METHODS.items():
        params = [f"{k}={'required' if p.default == 'required' else p.default}" for k, p in m.shared.items()]
        params += [f"{k}[per model]={'required' if p.default == 'required' else p.default}"
                   for k, p in m.per_model.items()]
        needs = "base_model, " if m.base else ""
        count = f"{m.min_models}" + (f"-{m.max_models}" if m.max_models and m.max_models != m.min_models
                                     else "" if m.max_models else "+")
        lines.append(f"{name:<17} {m.summary}\n{'':<17} {needs}{count} models; {', '.join(params) or 'no parameters'}")
    return "\n".join(lines)


def merge_main(argv) -> int:
    parser = ArgumentParser(prog="foundry merge", description=__doc__.split("\n\n")[0],
                            formatter_class=argparse.RawDescriptionHelpFormatter,
                            epilog="methods: " + ", ".join(_method_names()))
    parser.add_argument("recipe", nargs="?", help="mergekit-format YAML recipe")
    parser.add_argument("--out", help="output folder (must not exist)")
    parser.add_argument("--dry-run", action="store_true", help="check and plan only; list the output tensors")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.add_argument("--seed", type=int, help="seed of random methods (overrides the recipe's `seed`)")
    parser.add_argument("--device", default="cpu", help="where tensors are merged: cpu (default), cuda, cuda:N")
    parser.add_argument("--max-shard-size", default="5GB", help="Hugging Face output shards (default 5GB)")
    parser.add_argument("--methods", action="store_true", help="list the merge methods and their parameters")
    args = parser.parse_args(argv)
    if args.methods:
        print(methods_text())
        return 0
    if not args.recipe or not args.out:
        parser.error("a recipe and --out are required")
    from foundry.merge import merge
    from foundry.zoo.cli import parse_size
    progress = None if args.json or args.dry_run else Progress()
    summary = merge(args.recipe, args.out, seed=args.seed, device=args.device, dry_run=args.dry_run,
                    max_shard_bytes=parse_size(args.max_shard_size), progress=progress)
    if args.json:
        print(json.dumps(summary, indent=2, default=str))
        return 0
    for warning in summary["warnings"]:
        print(f"warning: {warning}", file=sys.stderr)
    if args.dry_run:
        for t in summary["plan"]:
            params = {**t["shared"], **({"per_model": t["per_model"]} if t["per_model"] else {})}
            print(f"{t['name']:<40} {t['dtype'].removeprefix('torch.'):<9} <- {len(t['inputs'])} inputs  {params}")
        print(f"--- dry run: {summary['tensors']} tensors, {summary['params']:,} params, {summary['n_layer']} layers; "
              f"nothing written")
        return 0
    print("---\n" + "\n".join(f"{k}: {summary[k]}" for k in SHOWN if k in summary))
    print("inputs: " + ", ".join(summary["models"]))
    return 0


def _method_names():
    from foundry.merge import METHODS
    return list(METHODS)
