"""`foundry mutate`: write one mutated variant of a baseline, or list the mutation registry.

    foundry mutate attention gqa_1kv                       # -> experiments/attention_gqa_1kv.yaml
    foundry mutate lr x2 --baseline experiments/attention_gqa_1kv.yaml --out experiments/stack
    foundry mutate --list [--json]
    python -m foundry.mutate ...                           # the same

The variant records its lineage (parent = the baseline's name, mutations += TYPE:VARIANT), so
mutating a mutant stacks. A mutation that does not apply or gives an invalid config is reported
with its reason (exit 2) and nothing is written.
"""
from __future__ import annotations

import argparse
import os

from foundry.catalog import load
from foundry.config import config_hash, diff, dumps
from foundry.errors import ArgumentParser, UserError
from foundry.io import atomic_write_text, check_writable_dir, to_json
from foundry.mutate import MUTATIONS, apply, describe


def _parser() -> argparse.ArgumentParser:
    p = ArgumentParser(prog="foundry mutate", description=__doc__.split("\n\n")[0],
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       epilog="types: " + ", ".join(MUTATIONS))
    p.add_argument("type", nargs="?", help="mutation type (see --list)")
    p.add_argument("variant", nargs="?", help="variant of that type (see --list)")
    p.add_argument("--baseline", default="baselines/tiny.yaml", help="config to mutate (default: %(default)s)")
    p.add_argument("--out", default="experiments", help="folder for TYPE_VARIANT.yaml (default: %(default)s)")
    p.add_argument("--list", action="store_true", help="show every mutation type and its variants")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    return p


def _print_list(as_json: bool) -> None:
    entries = describe()
    if as_json:
        print(to_json(entries, indent=2))
        return
    width = max(len(e["type"]) for e in entries)
    for e in entries:
        print(f"{e['type']:<{width}}  {', '.join(e['variants'])}")
        print(f"{'':<{width}}    {e['description']}")


def mutate_main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    if args.list:
        _print_list(args.json)
        return 0
    if not args.type or not args.variant:
        raise UserError("give TYPE VARIANT (or --list to see them)")
    check_writable_dir(args.out)
    base = load(args.baseline)
    child = apply(base, args.type, args.variant)
    path = os.path.join(args.out, f"{args.type}_{args.variant}.yaml")
    atomic_write_text(path, dumps(child))
    changes = {k: list(v) for k, v in diff(base, child).items() if k not in ("name", "parent", "mutations")}
    if args.json:
        print(to_json({"path": path, "name": child.name, "parent": child.parent,
                          "mutations": child.mutations, "config_hash": config_hash(child),
                          "changes": changes}, indent=2))
    else:
        print(f"wrote {path}  ({child.name}, parent {child.parent}, mutations: {', '.join(child.mutations)})")
        for key, (old, new) in changes.items():
            print(f"  {key}: {old} -> {new}")
    return 0
