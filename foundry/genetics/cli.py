"""`foundry genetics RECIPE.yaml --out DIR`: evolve weights (a GA) or search merge recipes (CMA-ES).

    foundry genetics ga.yaml --out runs/ga                       # 2+ CPU workers or one per GPU
    foundry genetics ga.yaml --out runs/ga --workers 0           # score in this process
    foundry genetics ga.yaml --out runs/ga --backend ray --address auto
    foundry genetics ga.yaml --out runs/ga --json                # the summary as JSON on stdout
    foundry genetics --operators                                 # operators, selections, fitness plugins

Run the same command again after a crash or kill -9: it resumes from OUT/state.json (or
OUT/cmaes.json) and, with the same seed, makes the same generations as an uninterrupted run.
A bad recipe key is one line naming the file and key, exit 2, and nothing is written.
"""
from __future__ import annotations

import argparse
import json
import sys

from foundry.errors import ArgumentParser, UserError


def catalogue_text() -> str:
    from foundry.genetics.fitness import FITNESS
    from foundry.genetics.operators import OPERATORS, SELECTIONS
    lines = []
    for title, registry in (("operators", OPERATORS), ("selections", SELECTIONS)):
        lines.append(f"{title}:")
        for name, entry in registry.items():
            params = ", ".join(f"{k}={p.default}" for k, p in entry.params.items())
            kind = f"[{entry.kind}] " if hasattr(entry, "kind") else ""
            lines.append(f"  {name:<11} {kind}{entry.summary}\n  {'':<11} {params}")
    lines.append("fitness plugins:")
    lines += [f"  {name:<11} {plugin.summary}" for name, plugin in FITNESS.items()]
    return "\n".join(lines)


def parse_workers(text: str):
    if text == "auto":
        return "auto"
    if not text.isdigit() or int(text) > 4096:
        raise UserError(f"--workers: expected 'auto' or a number of workers in [0, 4096], got {text!r}")
    return int(text)


def genetics_main(argv) -> int:
    from foundry.runner.backends import add_backend_arguments
    parser = ArgumentParser(prog="foundry genetics", description=__doc__.split("\n\n")[0],
                            formatter_class=argparse.RawDescriptionHelpFormatter,
                            epilog="\n\n".join(__doc__.split("\n\n")[1:]))
    parser.add_argument("recipe", nargs="?", help="the genetics recipe (YAML): GA keys or a `merge:` section")
    parser.add_argument("--out", help="run folder (created; an existing one is resumed)")
    parser.add_argument("--workers", default="auto", help="scoring workers: auto (one per GPU, else CPU workers), "
                                                          "N, or 0 (in this process)")
    parser.add_argument("--per-trial", type=int, help="candidates one scoring trial takes (default: a generation's "
                                                      "unscored candidates shared out, one trial per worker)")
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds one scoring trial may take")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON on stdout")
    parser.add_argument("--operators", action="store_true", help="list operators, selections and fitness plugins")
    add_backend_arguments(parser)
    args = parser.parse_args(argv)
    if args.operators:
        print(catalogue_text())
        return 0
    if not args.recipe or not args.out:
        parser.error("a recipe and --out are required")
    from foundry.config import check_flags
    from foundry.genetics.evolve import open_genetics_pool, run_genetics
    from foundry.genetics.recipe import GARecipe, load
    from foundry.genetics.store import Reporter, Store
    from foundry.io import check_writable_dir
    check_flags(args, {"timeout": "(0, 1e7]", "per_trial": "[1, 1e6]"})
    workers = parse_workers(args.workers)
    check_writable_dir(args.out)
    recipe = load(args.recipe)
    backend = args.backend or "local"
    if isinstance(recipe, GARecipe):
        summary = run_genetics(recipe, args.out, backend=backend, workers=workers, address=args.address,
                               timeout_s=args.timeout, per_trial=args.per_trial)
    else:
        from foundry.genetics.cmaes_search import run_cmaes
        store = Store(args.out)
        reporter = Reporter(store.tb)
        pool = open_genetics_pool(backend, workers, store.dir, args.timeout, args.address)
        try:
            summary = run_cmaes(recipe, store.dir, pool=pool, progress=reporter)
        finally:
            if pool is not None:
                pool.close()
            reporter.close()
    if args.json:
        print(json.dumps(summary, indent=2, default=str))
    else:
        best = summary["best"]
        print(f"best: {best['id']}  fitness {best['fitness']:.6g}  heldout {best.get('heldout')}")
        print(f"export: {summary['export']}")
    return 0


if __name__ == "__main__":
    from foundry.errors import run_command
    sys.exit(run_command("foundry genetics", genetics_main, sys.argv[1:]))
