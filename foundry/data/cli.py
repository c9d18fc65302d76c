"""`foundry data ...`: look at a corpus, filter and deduplicate it, synthesize instructions and preference pairs.

    foundry data stats SRC [--field text] [--near 0.8] [--json]          # sizes, lengths, duplicates, rule hits
    foundry data filter SRC --filters '[{name: length, min_chars: 200}]' --out kept.jsonl
    foundry data filter SRC --config baselines/x.yaml --out kept.jsonl   # the config's data.filters
    foundry data dedupe SRC --threshold 0.8 --out unique.jsonl           # exact + MinHash near duplicates
    foundry data synth --model RUN --seeds seeds.jsonl -n 100 --out synth.jsonl      # self-instruct
    foundry data revise --model RUN --prompts prompts.jsonl --out pairs.jsonl        # critique -> revision DPO pairs

SRC is anything `data.source` accepts. Written JSONL holds the kept documents: a JSONL source's own
records (all their keys), otherwise {"text": ...}; files are written atomically. Each command prints
what it did (per filter: documents and characters removed, and why); --json prints it for machines.
"""
from __future__ import annotations

import os
import sys
import time

import numpy as np
import yaml

from foundry.config import check_flags
from foundry.errors import ArgumentParser, UserError
from foundry.io import atomic_write_text, check_writable_dir, to_json

# the numeric options of each command and the values they may take ("[a, b]" closed, "(a, b)" open)
RANGES = {
    "stats": {"near": "[0, 1]"},
    "dedupe": {"threshold": "(0, 1]", "num_perm": "[16, 4096]", "ngram": "[1, 1000]"},
    "generation": {"seed": "[0, 4294967295]", "temperature": "[0, 100]", "top_p": "(0, 1]",
                   "max_new": "[1, 1e6]", "batch_size": "[1, 1e5]"},
    "synth": {"n": "[1, 1e7]", "rouge": "(0, 1]", "max_rounds": "[1, 1e6]"},
}


def _check_out(path) -> None:
    """Refuse an --out that cannot be written before any work: a folder, or a place without write access."""
    if path is None:
        return
    if os.path.isdir(path):
        raise UserError(f"--out {path}: is a folder; name the JSONL file to write")
    check_writable_dir(os.path.dirname(os.path.abspath(path)), "--out")


def _source_args(parser):
    parser.add_argument("source", help="a data.source: builtin, a text file, a folder or glob, or a .jsonl")
    parser.add_argument("--field", default="text", help="JSONL field that holds the text (default: text)")
    parser.add_argument("--format", default="none", help="chat format for JSONL conversations (chatml, llama3, alpaca)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")


def _read(args):
    from foundry.data.jsonl import read_jsonl
    from foundry.data.sources import expand_path, read_source
    source = read_source(args.source, args.field, args.format)
    records = None
    if source.kind == "jsonl":
        records = [{k: v for k, v in r.items() if k != "_line"} for r in read_jsonl(expand_path(args.source))]
    return source, records


def _write(path, documents, records, kept) -> None:
    rows = [records[i] for i in kept] if records is not None else [{"text": documents[i]} for i in kept]
    atomic_write_text(path, "".join(to_json(r, ensure_ascii=False) + "\n" for r in rows))


def _print_report(report, total: int, kept: int, out) -> None:
    for entry in report:
        print(f"{entry['filter']}: removed {entry['removed_documents']:,} of {entry['input_documents']:,} documents "
              f"({entry['removed_chars']:,} chars)")
        for reason, what in sorted(entry["reasons"].items(), key=lambda kv: -kv[1]["documents"]):
            print(f"  {reason}: {what['documents']:,} documents, {what['chars']:,} chars")
    print(f"kept {kept:,} of {total:,} documents" + (f" -> {out}" if out else ""))


def _run_filters(args, specs):
    from foundry.data.filters import apply_filters, build_filter
    from foundry.data.tokenizer import build_tokenizer
    source, records = _read(args)
    docs, start = source.documents, time.perf_counter()
    print(f"{args.source}: {len(docs):,} documents; filtering", file=sys.stderr)
    kept, report = apply_filters(docs, specs)
    if any(build_filter(s).needs_tokenizer for s in specs):
        tokenizer = build_tokenizer(args.tokenizer, "\n\n".join(docs[i] for i in kept))
        more, report2 = apply_filters([docs[i] for i in kept], specs, tokenizer, stage="tokens")
        kept, report = [kept[i] for i in more], report + report2
    seconds = time.perf_counter() - start
    if args.out:
        _write(args.out, docs, records, kept)
    result = {"source": args.source, "documents": len(docs), "kept": len(kept), "seconds": round(seconds, 3),
              "documents_per_s": round(len(docs) / max(seconds, 1e-9), 1), "filters": report, "out": args.out}
    if args.json:
        print(to_json(result, indent=1))
    else:
        _print_report(report, len(docs), len(kept), args.out)
        print(f"{result['documents_per_s']:,.0f} documents/s")
    return result


def filter_main(argv) -> int:
    p = ArgumentParser(prog="foundry data filter", description="Apply data.filters to a corpus.")
    _source_args(p)
    p.add_argument("--filters", help="YAML list of filters, e.g. '[{name: length, min_chars: 200}, {name: exact_dup}]'")
    p.add_argument("--config", help="use this config's data.filters instead")
    p.add_argument("--tokenizer", default="byte", help="tokenizer for token-length limits (default: byte)")
    p.add_argument("--out", help="write the kept documents here as JSONL")
    args = p.parse_args(argv)
    _check_out(args.out)
    if bool(args.filters) == bool(args.config):
        raise UserError("give exactly one of --filters and --config")
    if args.config:
        from foundry.catalog import load
        specs = load(args.config).data.filters
    else:
        try:
            specs = yaml.safe_load(args.filters)
        except yaml.YAMLError as e:
            raise UserError(f"--filters: invalid YAML ({str(e).splitlines()[0]})") from None
        from foundry.data.filters import check_filters
        specs = specs if isinstance(specs, list) else [specs]
        check_filters(specs)
    _run_filters(args, specs)
    return 0


def dedupe_main(argv) -> int:
    p = ArgumentParser(prog="foundry data dedupe",
                                description="Remove exact (normalized text) and near (MinHash LSH) duplicates.")
    _source_args(p)
    p.add_argument("--threshold", type=float, default=0.8, help="Jaccard threshold of near duplicates (default 0.8)")
    p.add_argument("--num-perm", type=int, default=128, help="MinHash permutations (default 128)")
    p.add_argument("--ngram", type=int, default=5, help="words per shingle (default 5)")
    p.add_argument("--no-exact", action="store_true", help="skip the exact-duplicate pass")
    p.add_argument("--out", help="write the unique documents here as JSONL")
    args = p.parse_args(argv)
    check_flags(args, RANGES["dedupe"])
    _check_out(args.out)
    args.tokenizer = "byte"
    specs = [] if args.no_exact else [{"name": "exact_dup"}]
    specs.append({"name": "near_dup", "threshold": args.threshold, "num_perm": args.num_perm, "ngram": args.ngram})
    from foundry.data.filters import check_filters
    check_filters(specs)
    _run_filters(args, specs)
    return 0


def stats_main(argv) -> int:
    from foundry.data.filters import apply_filters
    p = ArgumentParser(prog="foundry data stats", description="Sizes, lengths and duplicates of a corpus.")
    _source_args(p)
    p.add_argument("--near", type=float, default=0.0, help="also count near duplicates at this Jaccard threshold")
    args = p.parse_args(argv)
    check_flags(args, RANGES["stats"])
    source, _ = _read(args)
    docs = source.documents
    lengths = np.array([len(d) for d in docs])
    result = {"source": args.source, "kind": source.kind, "documents": len(docs), "chars": int(lengths.sum()),
              "words": int(sum(len(d.split()) for d in docs)), "bytes": int(sum(len(d.encode()) for d in docs)),
              "chars_per_document": {q: float(np.percentile(lengths, p)) for q, p in
                                     (("min", 0), ("p10", 10), ("median", 50), ("p90", 90), ("max", 100))},
              "would_remove": {}}
    checks = [{"name": "exact_dup"}, {"name": "gopher_repetition"}, {"name": "gopher_quality"}]
    if args.near:
        checks.append({"name": "near_dup", "threshold": args.near})
    for spec in checks:  # each on the whole corpus, independently
        _, (entry,) = apply_filters(docs, [spec])
        result["would_remove"][spec["name"]] = {"documents": entry["removed_documents"], "chars": entry["removed_chars"],
                                                "reasons": {k: v["documents"] for k, v in entry["reasons"].items()}}
    if args.json:
        print(to_json(result, indent=1))
        return 0
    print(f"{args.source} ({source.kind}): {result['documents']:,} documents, {result['chars']:,} chars, "
          f"{result['words']:,} words, {result['bytes']:,} bytes")
    print("chars per document: " + ", ".join(f"{k} {v:,.0f}" for k, v in result["chars_per_document"].items()))
    for name, what in result["would_remove"].items():
        print(f"{name} would remove {what['documents']:,} documents ({what['chars']:,} chars)"
              + (": " + ", ".join(f"{k} {v}" for k, v in what["reasons"].items()) if what["reasons"] else ""))
    return 0


def _generator(args):
    """(generate(prompts, stop) -> texts bound to the checkpoint, its chat format, its path)."""
    from foundry.data.generation import sample
    from foundry.weights.checkpoint import load_model
    model, tokenizer, cfg = load_model(args.model, device=args.device)
    calls = {"n": 0}

    def generate(prompts, stop):
        calls["n"] += 1
        start = time.perf_counter()
        texts = sample(model, tokenizer, prompts, args.max_new, args.temperature, args.top_p, stop,
                       seed=args.seed * 1000 + calls["n"], batch_size=args.batch_size)
        print(f"  generated {len(prompts)} texts in {time.perf_counter() - start:.1f} s", file=sys.stderr)
        return texts
    return generate, cfg.data.format


def _generation_args(p):
    p.add_argument("--model", required=True, help="a Foundry run folder or checkpoint")
    p.add_argument("--out", required=True, help="JSONL file to write")
    p.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")
    p.add_argument("--temperature", type=float, default=0.7, help="sampling temperature; 0 = greedy (default 0.7)")
    p.add_argument("--top-p", type=float, default=0.9, help="nucleus sampling: the likeliest tokens up to this "
                                                           "probability mass (default 0.9)")
    p.add_argument("--max-new", type=int, default=96, help="new tokens per generation (default 96)")
    p.add_argument("--batch-size", type=int, default=16, help="prompts sampled together (default 16)")
    p.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N | auto (default cpu)")
    p.add_argument("--json", action="store_true", help="print the counts as JSON")


def _check_generation(args, ranges: dict) -> None:
    """synth / revise: numbers, the device and --out checked before the model loads."""
    from foundry.hardware import pick_device
    check_flags(args, {**RANGES["generation"], **ranges})
    args.device = pick_device(args.device, "--device")
    _check_out(args.out)


def synth_main(argv) -> int:
    from foundry.data.synth import load_seeds, self_instruct
    p = ArgumentParser(prog="foundry data synth", description="Self-instruct: new instructions and responses.")
    _generation_args(p)
    p.add_argument("--seeds", required=True, help="JSONL seed tasks with an 'instruction' (or 'question') each")
    p.add_argument("-n", type=int, default=100, help="instructions to keep (default 100)")
    p.add_argument("--rouge", type=float, default=0.7, help="keep an instruction only below this ROUGE-L (default 0.7)")
    p.add_argument("--max-rounds", type=int, default=50, help="generation rounds before giving up (default 50)")
    args = p.parse_args(argv)
    _check_generation(args, RANGES["synth"])
    generate, fmt = _generator(args)
    records, counts = self_instruct(generate, load_seeds(args.seeds), args.n, fmt, args.seed, args.model,
                                    rouge_threshold=args.rouge, max_rounds=args.max_rounds,
                                    per_round=args.batch_size, log=lambda m: print(m, file=sys.stderr))
    atomic_write_text(args.out, "".join(to_json(r, ensure_ascii=False) + "\n" for r in records))
    counts.update(out=args.out, per_minute=round(counts["kept"] / max(counts["seconds"], 1e-9) * 60, 2),
                  kept_share=round(counts["kept"] / max(1, counts["candidates"]), 4))
    print(to_json(counts, indent=1) if args.json else
          f"kept {counts['kept']} of {counts['candidates']} candidate instructions ({counts['kept_share']:.0%}), "
          f"{counts['per_minute']:.1f}/min -> {args.out}; dropped: " +
          ", ".join(f"{k} {counts[k]}" for k in ("empty", "length", "duplicate", "similar", "bad_response")))
    return 0


def revise_main(argv) -> int:
    from foundry.data.constitution import BUILTIN_CONSTITUTION, critique_revision, load_constitution
    from foundry.data.synth import load_seeds
    p = ArgumentParser(prog="foundry data revise",
                                description="Critique -> revision against a constitution: DPO pairs (train.loss: dpo).")
    _generation_args(p)
    p.add_argument("--prompts", required=True, help="JSONL prompts with an 'instruction' (or 'question') each")
    p.add_argument("--constitution", default=BUILTIN_CONSTITUTION, help="constitution YAML (default: the shipped one)")
    args = p.parse_args(argv)
    _check_generation(args, {})
    constitution = load_constitution(args.constitution)
    generate, _ = _generator(args)
    pairs, counts = critique_revision(generate, load_seeds(args.prompts), constitution, args.seed)
    for pair in pairs:
        pair["model"] = args.model
    atomic_write_text(args.out, "".join(to_json(r, ensure_ascii=False) + "\n" for r in pairs))
    counts["out"] = args.out
    print(to_json(counts, indent=1) if args.json else
          f"{counts['kept']} pairs from {counts['prompts']} prompts (dropped: {counts['empty']} empty, "
          f"{counts['unchanged']} unchanged) -> {args.out}")
    return 0


def data_main(argv) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print("usage: foundry data {" + ",".join(DATA_COMMANDS) + "} ...  (each with --help)\n\n"
              + __doc__.split("\n\n")[0] + "\n\nsubcommands:")
        for name, (_, summary) in DATA_COMMANDS.items():
            print(f"  {name:<8} {summary}")
        return 0 if argv else 2
    if argv[0] not in DATA_COMMANDS:
        raise UserError(f"unknown subcommand {argv[0]!r} (valid: {', '.join(DATA_COMMANDS)})")
    return DATA_COMMANDS[argv[0]][0](argv[1:])


DATA_COMMANDS = {
    "stats": (stats_main, "sizes, length percentiles, duplicates and quality-rule hits of a corpus"),
    "filter": (filter_main, "apply data.filters; report what was removed and why; write the rest as JSONL"),
    "dedupe": (dedupe_main, "remove exact and MinHash near duplicates"),
    "synth": (synth_main, "self-instruct: new instructions and responses from a model and seed tasks"),
    "revise": (revise_main, "critique -> revision against a constitution: DPO preference pairs"),
}
