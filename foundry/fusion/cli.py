"""`foundry fuse RECIPE --out RUN` (build and train a fused model) and `foundry fuse report RUN`.

    foundry fuse bench/fusion/recipe.yaml --out runs/fused               # train; ends with the summary block
    foundry fuse bench/fusion/recipe.yaml router.kind=token --out runs/t # dotted overrides of the recipe
    foundry fuse bench/fusion/recipe.yaml --out runs/fused --resume      # continue after a crash
    foundry fuse bench/fusion/recipe.yaml --dry-run                      # resolve and print the plan only
    foundry fuse report runs/fused [--out usage.png] [--json]            # usage heatmap, per-source bpb

Training goes through Foundry's trainer (run folder, TensorBoard, checkpoints, resume, summary);
RUN/fusion.json adds where each expert was placed, what was read and peak memory per device.
Exit codes as foundry train: 0 done, 3 diverged, 130 interrupted, 2 bad input, 1 a crash.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

from foundry.errors import ArgumentParser, UserError


def _parser(prog, description):
    return ArgumentParser(prog=f"foundry {prog}", description=description,
                          formatter_class=argparse.RawDescriptionHelpFormatter)


def fuse_main(argv) -> int:
    if argv[:1] == ["report"]:
        return report_main(argv[1:])
    p = _parser("fuse", "Build a fused model from experts' blocks (adapters and routers between them, experts "
                        "frozen) and train it. `foundry fuse report RUN --help`: the usage heatmap.")
    p.add_argument("recipe", help="fusion recipe YAML (experts, base, layers, ...; see foundry/fusion/recipe.py)")
    p.add_argument("overrides", nargs="*", help="dotted overrides, e.g. router.kind=token budget.tokens=100000")
    p.add_argument("--out", help="run folder (default runs/NAME-HASH)")
    p.add_argument("--resume", action="store_true", help="continue from the run folder's checkpoint")
    p.add_argument("--dry-run", action="store_true", help="resolve the recipe, print the plan, train nothing")
    args = p.parse_args(argv)
    from foundry.config import config_hash
    from foundry.fusion.recipe import describe, load_recipe
    cfg = load_recipe(args.recipe, args.overrides)
    print(describe(cfg))
    if args.dry_run:
        return 0
    out = args.out or os.path.join("runs", f"{cfg.name}-{config_hash(cfg)}")
    if not args.resume and os.path.exists(os.path.join(out, "checkpoint")):
        raise UserError(f"{out}: already holds a run; pass --resume to continue it or choose another --out")
    return train_fused(cfg, out, args.resume)


def train_fused(cfg, out, resume=False) -> int:
    """foundry fuse's training: exit code from the run's status; a crash prints its traceback (1)."""
    import traceback

    from foundry.fusion.train import fuse
    from foundry.training.run_files import EXIT_CODES
    try:
        summary = fuse(cfg, out, resume)
    except UserError:
        raise
    except Exception:
        traceback.print_exc()
        return 1
    return EXIT_CODES[summary["status"]]


def report_main(argv) -> int:
    p = _parser("fuse report", "Expert usage per fused layer and per data source (the mixture's validation "
                               "slices), as a heatmap PNG and JSON, with each source's val_bpb.")
    p.add_argument("run", help="a fused run folder (or its checkpoint/)")
    p.add_argument("--out", help="PNG path (default RUN/fusion_usage.png; the JSON goes beside it)")
    p.add_argument("--bytes", type=int, default=None, help="validation bytes per source (default eval.bytes)")
    p.add_argument("--device", default="auto")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    args = p.parse_args(argv)
    from foundry.fusion.report import usage_report, write_report
    report = usage_report(args.run, device=args.device, n_bytes=args.bytes)
    png = args.out or os.path.join(args.run, "fusion_usage.png")
    write_report(report, png)
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    for source, layers in report["usage"].items():
        print(f"{source}: val_bpb {report['val_bpb'][source]:.4f}")
        for layer, usage in enumerate(layers):
            print(f"  layer {layer}: " + "  ".join(f"{e} {u:.3f}" for e, u in usage.items()))
    print(f"wrote {png} and {os.path.splitext(png)[0]}.json")
    return 0


if __name__ == "__main__":
    from foundry.errors import run_command
    sys.exit(run_command("foundry fuse", fuse_main, sys.argv[1:]))
