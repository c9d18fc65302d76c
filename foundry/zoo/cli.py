"""`foundry zoo list | import | export`: presets, and Hugging Face folders in and out.

    foundry zoo list [--json]                                    # presets with params and FLOPs/token
    foundry zoo import HF_DIR --out RUN [--dtype auto|fp32|bf16|fp16] [--allow-pickle] [--json]
    foundry zoo export RUN --out HF_DIR [--family NAME] [--lora merge|adapter] [--dtype ...]
                       [--max-shard-size 5GB] [--json]

An imported RUN works with `foundry sample RUN`, `foundry eval RUN`, `train.init_from: RUN` and
the supervisor; RUN/config.yaml is its config (data.tokenizer: hf). Bad input exits 2 and leaves
no output folder.
"""
from __future__ import annotations

import argparse
import re
import sys

from foundry.errors import ArgumentParser, UserError
from foundry.io import to_json

SIZE_UNITS = {"": 1, "B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "KIB": 2**10, "MIB": 2**20, "GIB": 2**30}


def parse_size(text: str) -> int:
    """'5GB' -> 5e9 bytes, '200MiB' -> 200 * 2^20, '1000' -> 1000 (transformers' max_shard_size)."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*", text)
    if not match or match.group(2).upper() not in SIZE_UNITS or float(match.group(1)) <= 0:
        raise UserError(f"--max-shard-size: expected a size such as 5GB or 500MiB, got {text!r}")
    return int(float(match.group(1)) * SIZE_UNITS[match.group(2).upper()])


def preset_rows() -> list[dict]:
    """Every preset with its parameter count and training FLOPs per token (GPT built on meta)."""
    from foundry import catalog
    from foundry.model.shapes import meta_model
    from foundry.zoo.families import exportable_family
    from foundry.zoo.presets import PRESETS
    rows = []
    for name in PRESETS:
        m = catalog.from_dict({"model": {"preset": name}, "budget": {"steps": 1}}).model
        model = meta_model(m)
        rows.append({"preset": name, "family": exportable_family(m).name, "params": model.num_params(),
                     "flops_per_token": model.flops_per_token(), "n_layer": m.n_layer, "n_embd": m.n_embd,
                     "n_head": m.n_head, "n_kv_head": m.kv_heads, "vocab_size": m.vocab_size,
                     "block_size": m.block_size})
    return rows


def _list(args) -> int:
    rows = preset_rows()
    if args.json:
        print(to_json(rows, indent=2))
        return 0
    print(f"{'preset':<12} {'family':<8} {'params':>8} {'GFLOPs/tok':>10} {'layers':>6} {'width':>6} "
          f"{'heads/kv':>8} {'vocab':>7} {'context':>7}")
    for r in rows:
        print(f"{r['preset']:<12} {r['family']:<8} {r['params'] / 1e9:>7.2f}B {r['flops_per_token'] / 1e9:>10.2f} "
              f"{r['n_layer']:>6} {r['n_embd']:>6} {r['n_head']:>4}/{r['n_kv_head']:<3} {r['vocab_size']:>7} "
              f"{r['block_size']:>7}")
    print("FLOPs/token: training (6N + attention at the preset's context). Use: model: {preset: NAME}")
    return 0


def _import(args) -> int:
    from foundry.zoo.hf import import_folder
    log = (lambda *a: print(*a, file=sys.stderr)) if args.json else print
    summary = import_folder(args.hf_dir, args.out, allow_pickle=args.allow_pickle, dtype=args.dtype, log=log)
    if args.json:
        print(to_json(summary, indent=2))
    else:
        print(f"imported {summary['family']} ({summary['params']:,} params, {summary['tensors']} tensors) "
              f"into {summary['out']} in {summary['seconds']:.1f}s")
        print(f"try: foundry sample {args.out} --prompt 'Hello'   |   train.init_from: {args.out}")
    return 0


def _export(args) -> int:
    from foundry.zoo.export import export_run
    log = (lambda *a: print(*a, file=sys.stderr)) if args.json else print
    summary = export_run(args.run, args.out, family=args.family, lora=args.lora, dtype=args.dtype,
                         max_shard_bytes=parse_size(args.max_shard_size), log=log)
    if args.json:
        print(to_json(summary, indent=2))
    else:
        what = "peft adapter" if args.lora == "adapter" else f"{len(summary['files'])} weight file(s)"
        print(f"exported {summary['family']} ({what}) to {summary['out']} in {summary['seconds']:.1f}s")
    return 0


def zoo_main(argv) -> int:
    p = ArgumentParser(prog="foundry zoo", description=__doc__.split("\n\n")[0],
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True, metavar="{" + ",".join(ZOO_COMMANDS) + "}")
    ls = sub.add_parser("list", help="presets: named model shapes with params and FLOPs/token",
                        description="The presets (model: {preset: NAME}) with parameters and training FLOPs per token.")
    ls.add_argument("--json", action="store_true", help="machine-readable output")
    imp = sub.add_parser("import", help="a Hugging Face folder -> a Foundry checkpoint folder",
                         description="Import a local Hugging Face Llama / Mistral / Qwen2 / GPT-2 folder as a "
                                     "Foundry run folder (sample, eval, train.init_from).\n\n"
                                     "  foundry zoo import ./Llama-3.2-1B --out runs/llama1b --dtype bf16",
                         formatter_class=argparse.RawDescriptionHelpFormatter)
    imp.add_argument("hf_dir", help="folder with config.json, safetensors and tokenizer.json")
    imp.add_argument("--out", required=True, help="the run folder to create (must not exist)")
    imp.add_argument("--dtype", default="auto", help="auto (keep), fp32, bf16 or fp16")
    imp.add_argument("--allow-pickle", action="store_true",
                     help="also read pytorch_model.bin (torch.load with weights_only=True)")
    imp.add_argument("--json", action="store_true", help="print the summary as JSON")
    exp = sub.add_parser("export", help="a Foundry checkpoint -> a Hugging Face folder",
                         description="Export a Foundry run as a Hugging Face folder (or, for a LoRA run, a peft "
                                     "adapter) that transformers loads.\n\n"
                                     "  foundry zoo export runs/tiny --out hf/tiny --family llama",
                         formatter_class=argparse.RawDescriptionHelpFormatter)
    exp.add_argument("run", help="a run folder or its checkpoint/")
    exp.add_argument("--out", required=True, help="the folder to create (must not exist)")
    exp.add_argument("--family", help="llama, mistral, qwen2 or gpt2 (default: as imported, else the first that fits)")
    exp.add_argument("--lora", default="merge", choices=("merge", "adapter"),
                     help="a LoRA run: merged weights (default) or a peft adapter folder")
    exp.add_argument("--dtype", default="auto", help="auto (as stored), fp32, bf16 or fp16")
    exp.add_argument("--max-shard-size", default="5GB", help="largest weight file (default: %(default)s)")
    exp.add_argument("--json", action="store_true", help="print the summary as JSON")
    args = p.parse_args(argv)
    return ZOO_COMMANDS[args.command](args)


ZOO_COMMANDS = {"list": _list, "import": _import, "export": _export}
