"""`foundry prune`: prune a trained run into a new run folder.

    foundry prune runs/base --method wanda --sparsity 0.5 --calibration 16 --out runs/base-wanda50
    foundry prune runs/base --method magnitude --pattern 2:4 --out runs/base-2of4
    foundry prune runs/base --structured heads --sparsity 0.25 --out runs/base-heads
    foundry train cfg.yaml train.init_from=runs/base-wanda50 budget.tokens=200000   # fine-tune

Prints the report (sparsity, sizes, val loss before and after) as a table, or as JSON with --json.
"""
import argparse
import json

from foundry.errors import ArgumentParser
from foundry.prune.scores import PRUNE_METHODS, PRUNE_SCOPES


def prune_main(argv) -> int:
    p = ArgumentParser(prog="foundry prune", description=__doc__.split("\n\n")[0],
                       epilog="\n\n".join(__doc__.split("\n\n")[1:]),
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run", help="a Foundry run folder or checkpoint (a LoRA run is merged first)")
    p.add_argument("--out", required=True, help="the new run folder (must not exist)")
    p.add_argument("--method", choices=sorted(PRUNE_METHODS), help="unstructured score: " + "; ".join(
        f"{k}: {m.description}" for k, m in PRUNE_METHODS.items()))
    p.add_argument("--sparsity", type=float, default=None,
                   help="share removed (default 0.5); with --structured the share of heads, neurons or layers")
    p.add_argument("--pattern", default="", help="N:M semi-structured sparsity, e.g. 2:4 (sets the sparsity)")
    p.add_argument("--scope", choices=sorted(PRUNE_SCOPES), default="",
                   help="group compared: row, layer or global (default: wanda row, others layer)")
    p.add_argument("--calibration", type=int, default=16, help="training sequences for wanda / saliency / structured")
    p.add_argument("--structured", choices=("heads", "neurons", "layers"),
                   help="remove whole heads, FFN neurons or blocks: a smaller config and checkpoint")
    p.add_argument("--seed", type=int, default=0, help="seed of the calibration sample")
    p.add_argument("--device", default="cpu", help="where pruning and its evaluation run: cpu, cuda, cuda:N")
    p.add_argument("--no-eval", action="store_true", help="skip the validation loss before and after")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    args = p.parse_args(argv)
    from foundry.errors import UserError
    from foundry.prune.run import prune_run
    if args.pattern and args.sparsity is not None:
        raise UserError("--pattern N:M fixes the sparsity at 1 - N/M; do not give --sparsity as well")
    report = prune_run(args.run, args.out, method=args.method or "", pattern=args.pattern,
                       sparsity=0.5 if args.sparsity is None else args.sparsity, scope=args.scope,
                       calibration=args.calibration, structured=args.structured or "", seed=args.seed,
                       device=args.device, evaluate=not args.no_eval, log=(lambda *a: None) if args.json else print)
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    before, after = report["before"], report["after"]
    rows = [("out", report["out"]), ("params", f"{report['params']:,}")]
    if "sparsity" in report:
        rows.append(("sparsity", f"{report['sparsity']:.4f} ({report['method']}, scope {report['scope']}"
                                 f"{', ' + report['pattern'] if report['pattern'] else ''})"))
    else:
        rows.append(("flops_per_token", f"{report['flops_per_token_before']:,} -> {report['flops_per_token_after']:,}"))
    for key in ("val_loss", "val_bpb"):
        if key in before:
            rows.append((key, f"{before[key]:.4f} -> {after[key]:.4f}"))
    for key, value in rows:
        print(f"{key}: {value}")
    return 0
