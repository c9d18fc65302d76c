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

from foundry.errors import ArgumentParser
from foundry.io import check_writable_dir, to_json


def _workers(text: str):
    from foundry.errors import UserError
    from foundry.runner.pool import plan_workers
    if text != "auto" and not text.isdigit():
        raise UserError(f"--jobs: expected a positive number or 'auto', got {text!r}")
    try:
        return plan_workers("auto" if text == "auto" else int(text))
    except ValueError as e:
        raise UserError(f"--jobs: {e}") from None


class _Help(argparse.RawDescriptionHelpFormatter):
    """Ends an option's help with its default, unless it has none or the help already says it."""

    def _get_help_string(self, action):
        text = action.help or ""
        if action.option_strings and action.default not in (None, False, argparse.SUPPRESS) and "default" not in text:
            text += " (default: %(default)s)"
        return text


def _parser(prog: str, description: str) -> argparse.ArgumentParser:
    return ArgumentParser(prog=f"foundry {prog}", description=description, formatter_class=_Help)


# each command's numeric options and the values they may take ("[a, b]" closed, "(a, b)" open)
RANGES = {
    "sweep": {"seeds": "[1, 1000]", "grace": "[0, 1e15]", "eta": "(1, 100]", "max_budget": "[0, 1e15]",
              "top_k": "[1, 1000]", "timeout": "(0, 1e7]", "min_delta": "[0, 1e9]", "alpha": "(0, 1)"},
    "compare": {"seeds": "[1, 1000]", "level": "(0, 1)", "timeout": "(0, 1e7]"},
    "lr-find": {"min_lr": "(0, 1000]", "max_lr": "(0, 1000]", "steps": "[3, 1e6]", "smooth": "[0, 1)",
                "diverge": "(1, 1e6]"},
    "evolve": {"population": "[1, 10000]", "sample": "[1, 10000]", "cycles": "[1, 1e6]", "max_stack": "[1, 100]",
               "budget": "[1, 1e15]", "seed": "[0, 4294967295]", "timeout": "(0, 1e7]"},
}


def _parse(p: argparse.ArgumentParser, argv: list[str], command: str, intermixed: bool = False):
    """Parse, then refuse a number outside RANGES[command] (nan included) naming its flag."""
    from foundry.config import check_flags
    args = p.parse_intermixed_args(argv) if intermixed else p.parse_args(argv)
    check_flags(args, RANGES[command])
    return args


def sweep_main(argv: list[str]) -> int:
    from foundry.search import sweep
    p = _parser("sweep", "Train mutations of a baseline in parallel (optionally with ASHA), rank them "
                         "against the baseline, optionally promote the winner. Re-run the same command "
                         "to resume an interrupted sweep.")
    p.add_argument("targets", nargs="+", metavar="TYPE VARIANT... | TYPE:VARIANT...",
                   help="a mutation type and some of its variants (none = all), or type:variant labels")
    p.add_argument("--baseline", default="baselines/tiny.yaml", help="config whose mutations are swept")
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
    p.add_argument("--alpha", type=float, default=0.05,
                   help="promotion: one-sided level of the Welch t-test of the winner against the baseline")
    p.add_argument("--gpus-per-trial", type=int, default=1, help="devices each trial takes and trains on with "
                                                                 "as many processes (DDP/FSDP)")
    from foundry.runner.backends import add_backend_arguments
    add_backend_arguments(p)
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    args = _parse(p, argv, "sweep")
    from foundry.errors import UserError
    labels = sweep.parse_targets(args.targets)
    if args.backend == "ray":
        from foundry.runner.ray_pool import import_ray
        import_ray()   # not installed: say how, before anything is written
    if args.eval_task:
        from foundry.search.trials import check_eval_task
        check_eval_task(args.eval_task)
    asha = sweep.AshaOptions(args.grace, args.eta, args.max_budget, args.top_k) if args.asha else None
    seeds = args.seeds or (2 if args.asha else 1)
    if seeds < 1 or args.top_k < 1 or args.eta <= 1:
        raise UserError("--seeds and --top-k must be positive and --eta above 1")
    if args.promote and seeds < 2:
        raise UserError("--promote needs --seeds 2 or more: one run per config cannot tell a gain from noise")
    old_hash = sweep.check_promotable(args.baseline) if args.promote else None
    search_dir = args.dir or sweep.default_dir(args.baseline, labels, asha, seeds)
    check_writable_dir(search_dir, "--dir")
    log = (lambda *a, **k: None) if args.json else print
    report = sweep.run_sweep(args.baseline, labels, search_dir, _workers(args.jobs), asha, seeds,
                             args.eval_task, args.skip_invalid, args.timeout, log=log,
                             backend=args.backend or "local", address=args.address,
                             devices_per_trial=args.gpus_per_trial)
    if args.promote:
        report["promotion"] = sweep.promote_winner(report, args.baseline, old_hash, args.min_delta, args.alpha, log=log)
    print(to_json(report, indent=2) if args.json else sweep.format_report(report))
    return 0


def compare_main(argv: list[str]) -> int:
    from foundry.search import compare
    p = _parser("compare", "Train two configs with the same seeds, interleaved, and report means, spread and "
                           "the difference B - A with a confidence interval. Finished runs are reused.")
    p.add_argument("a", metavar="A.yaml", help="the reference config")
    p.add_argument("b", metavar="B.yaml", help="the config compared with it")
    p.add_argument("--seeds", type=int, default=3, help="runs per config (seeds seed, seed+1, ...)")
    p.add_argument("--jobs", default="auto", help="parallel workers: N or auto")
    p.add_argument("--out", help="folder for the runs (default: experiments/compare/A-vs-B-HASH)")
    p.add_argument("--metric", default="val_bpb", help="summary.json key to compare (lower is better)")
    p.add_argument("--level", type=float, default=0.95, help="confidence level of the intervals")
    p.add_argument("--timeout", type=float, help="per-run wall-clock limit in seconds")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    args = _parse(p, argv, "compare")
    out = args.out or compare.default_dir(args.a, args.b)
    check_writable_dir(out)
    log = (lambda *a, **k: None) if args.json else print
    report = compare.run_compare(args.a, args.b, args.seeds, _workers(args.jobs), out, args.metric, args.level,
                                 args.timeout, log=log)
    print(to_json(report, indent=2) if args.json else compare.format_report(report))
    return 0


def lr_find_main(argv: list[str]) -> int:
    from foundry.catalog import check_fits, load
    from foundry.search import lr_find
    p = _parser("lr-find", "Learning-rate range test: train while the lr grows exponentially, stop when the "
                           "loss diverges, suggest an lr; writes OUT/lr_find.json and OUT/lr_find.png.")
    p.add_argument("config", help="YAML config, e.g. baselines/tiny.yaml")
    p.add_argument("overrides", nargs="*", default=[], metavar="KEY=VALUE",
                   help="optional dotted overrides such as model.n_layer=6")
    p.add_argument("--out", help="output folder (default: experiments/lr_find/NAME)")
    p.add_argument("--min-lr", type=float, default=1e-6, help="learning rate of the first step")
    p.add_argument("--max-lr", type=float, default=1.0, help="learning rate of the last step")
    p.add_argument("--steps", type=int, default=100, help="steps from min-lr to max-lr")
    p.add_argument("--smooth", type=float, default=0.9, help="moving-average factor of the loss")
    p.add_argument("--diverge", type=float, default=4.0, help="stop when the smoothed loss exceeds this x its best")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    args = _parse(p, argv, "lr-find", intermixed=True)
    cfg = load(args.config, args.overrides)
    check_fits(cfg)
    out = args.out or f"experiments/lr_find/{cfg.name}"
    check_writable_dir(out)
    log = (lambda *a, **k: None) if args.json else print
    result = lr_find.lr_range_test(cfg, args.min_lr, args.max_lr, args.steps, args.smooth, args.diverge, log=log)
    json_path, png_path = lr_find.write_outputs(result, out)
    brief = {k: result[k] for k in ("suggested_lr", "steepest_lr", "min_loss_lr", "min_loss", "stop_reason")}
    if args.json:
        print(to_json({**brief, "json": json_path, "png": png_path}, indent=2))
    else:
        print(f"suggested lr: {result['suggested_lr']:.3g} (min-loss lr {result['min_loss_lr']:.3g} / 10); "
              f"steepest descent at {result['steepest_lr']:.3g}")
        print(f"wrote {json_path} and {png_path}")
    return 0


def evolve_main(argv: list[str]) -> int:
    from foundry.catalog import load
    from foundry.config import config_hash
    from foundry.search import evolution, trials
    p = _parser("evolve", "Aging evolution over configs: sample members, mutate the best (stacked mutations), "
                          "retire the oldest. Re-run the same command to resume the population.")
    p.add_argument("--baseline", default="baselines/tiny.yaml", help="config the first population mutates")
    p.add_argument("--dir", help="search folder (default: experiments/evolve/NAME-HASH)")
    p.add_argument("--population", type=int, default=8, help="members alive at once (the oldest retires)")
    p.add_argument("--sample", type=int, default=3, help="members sampled per cycle; the best is the parent")
    p.add_argument("--cycles", type=int, default=20, help="children to train")
    p.add_argument("--max-stack", type=int, default=2, help="mutations applied per child: 1 to this")
    p.add_argument("--budget", type=int, help="tokens per trial (default: the baseline's budget)")
    p.add_argument("--seed", type=int, default=0, help="seed of the search's random choices")
    p.add_argument("--jobs", default="auto", help="parallel workers: N or auto")
    p.add_argument("--timeout", type=float, help="per-trial wall-clock limit in seconds")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    args = _parse(p, argv, "evolve")
    base = load(args.baseline)
    budget = args.budget or trials.full_budget_tokens(base)
    folder = args.dir or f"experiments/evolve/{base.name}-{config_hash(base)}-s{args.seed}"
    check_writable_dir(folder, "--dir")
    evo = evolution.AgingEvolution.start(base, folder, args.population, args.sample, args.cycles,
                                         args.max_stack, args.seed)
    log = (lambda *a, **k: None) if args.json else print
    report = evolution.run_evolution(evo, _workers(args.jobs), budget, args.timeout, log=log)
    if args.json:
        print(to_json(report, indent=2))
        return 0
    rows = [{"id": m["id"], "label": m["label"], "val_bpb": m["objective"], "parent": m["parent"],
             **{k: (m.get("record") or {}).get(k) for k in ("tokens_per_s", "train_flops", "qpc")}}
            for m in sorted(report["population"], key=lambda m: m["objective"] if m["objective"] is not None else 9e9)]
    print(trials.table(rows, [("id", "member", ""), ("label", "mutations", ""), ("val_bpb", "val_bpb", ".4f"),
                              ("tokens_per_s", "tok/s", ".0f"), ("train_flops", "FLOPs", ".3g"), ("qpc", "QPC", ".3g"),
                              ("parent", "parent", "")]))
    best = report["best"]
    if best:
        print(f"\nbest ever: {best['id']} {best['label']} (val_bpb {best['objective']:.4f}, config {best['config']})")
    return 0
