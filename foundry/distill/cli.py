"""`foundry distill cache`: a teacher's top-k log-probabilities for a student's training stream, once.

    foundry distill cache runs/teacher student.yaml --top-k 16 --out caches/teacher-k16
    foundry distill cache runs/teacher student.yaml budget.steps=1000 --seeds 1,2,3 --out caches/t
    foundry train student.yaml train.distill.cache=caches/t          # no teacher at training time

CONFIG is the student's config (with dotted overrides): its data, train.seed, batch_size,
grad_accum, block_size and budget fix the stream. --seeds caches several seeds' streams (a
campaign's confirmation seeds) in one folder. Students of any shape, temperature, alpha or
top_k <= K then train from the cache.
"""
import argparse
import json

from foundry.errors import ArgumentParser


def cache_main(argv) -> int:
    p = ArgumentParser(prog="foundry distill cache", description=__doc__.split("\n\n")[0],
                       epilog="\n\n".join(__doc__.split("\n\n")[1:]),
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("teacher", help="the teacher: a Foundry run folder or checkpoint")
    p.add_argument("config", help="the student's YAML config")
    p.add_argument("overrides", nargs="*", help="dotted overrides such as budget.steps=1000")
    p.add_argument("--top-k", type=int, default=16, help="log-probabilities kept per position (default 16)")
    p.add_argument("--out", required=True, help="the cache folder (must not exist)")
    p.add_argument("--seeds", default="", help="comma-separated train.seed values (default: the config's)")
    p.add_argument("--steps", type=int, default=0, help="optimizer steps per seed (default: the config's budget)")
    p.add_argument("--json", action="store_true", help="print the manifest as JSON")
    args = p.parse_args(argv)
    from foundry.catalog import load
    from foundry.distill.cache import write_cache
    from foundry.errors import UserError
    cfg = load(args.config, args.overrides)
    try:
        seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    except ValueError:
        raise UserError(f"--seeds: expected comma-separated integers, got {args.seeds!r}") from None
    manifest = write_cache(args.teacher, cfg, args.out, top_k=args.top_k, seeds=seeds, steps=args.steps,
                           log=(lambda *a: None) if args.json else print)
    if args.json:
        print(json.dumps(manifest, indent=2))
    else:
        print(f"wrote {manifest['out']}: {manifest['windows']:,} windows, top {manifest['top_k']} of "
              f"{manifest['vocab_size']}, {manifest['bytes'] / 2**20:.1f} MiB, {manifest['seconds']:.1f} s")
    return 0


def distill_main(argv) -> int:
    commands = {"cache": cache_main}
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in commands:
        print("usage: foundry distill cache TEACHER CONFIG [key=value ...] --top-k K --out CACHE\n\n"
              "Distillation itself is a training objective: set train.distill.teacher (or .cache) in a\n"
              "config and run `foundry train`. Subcommands:\n"
              "  cache    write a teacher's top-k log-probabilities for a student's training stream")
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    return commands[argv[0]](argv[1:])
