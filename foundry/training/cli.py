"""`foundry train`, `foundry validate` and `foundry sample`; main() is the trainer's own entry point.

    foundry train baselines/tiny.yaml model.n_layer=4 --out runs/tiny4
    foundry train baselines/tiny.yaml --out runs/tiny4 --resume      # continue after a crash
    foundry train baselines/tiny.yaml --out runs/tiny4 --nproc 2     # 2 processes (torchrun; DDP/FSDP)
    foundry validate baselines/shakespeare_char.yaml train.lr=3e-4
    foundry sample runs/tiny4 --prompt "def " --tokens 200 --temperature 0.8

    python -m foundry.training.cli train CONFIG ...                # what trials of the pool run

Exit codes of train: 0 done, 3 diverged, 130 interrupted, 2 bad input, 1 a crash (the run
folder then holds summary.json with status `failed` and the error). main(argv) dispatches
train, train-rung (training/rung.py), validate and sample; the runner's fork server calls it.
"""
import argparse
import json
import os
import sys
import traceback

from foundry.catalog import check_fits, load
from foundry.config import config_hash, dumps
from foundry.errors import ArgumentParser, UserError, run_command
from foundry.io import check_writable_dir, write_json
from foundry.training.run_files import EXIT_CODES


def _parser(prog, description):
    return ArgumentParser(prog=f"foundry {prog}", description=description,
                          formatter_class=argparse.RawDescriptionHelpFormatter)


def _config_args(p) -> None:
    p.add_argument("config", help="YAML config, e.g. baselines/tiny.yaml")
    p.add_argument("overrides", nargs="*", default=[], metavar="KEY=VALUE",
                   help="optional dotted overrides such as model.n_layer=6 train.lr=3e-4")


def train_main(argv) -> int:
    p = _parser("train", "Train a config. The run folder gets summary.json, metrics.jsonl, "
                         "progress.json, TensorBoard events and checkpoint/.\n\n"
                         "  foundry train baselines/tiny.yaml\n"
                         "  foundry train baselines/tiny.yaml model.n_layer=6 --out runs/deeper\n"
                         "  foundry train baselines/tiny.yaml --out runs/deeper --resume")
    _config_args(p)
    p.add_argument("--out", help="run folder (default: runs/NAME-HASH)")
    p.add_argument("--resume", action="store_true", help="continue from the run folder's checkpoint")
    p.add_argument("--nproc", type=int, default=1, help="processes that train this run together, started with "
                                                        "torchrun (one per GPU; on a CPU they share the cores)")
    p.add_argument("--threads", type=int, help="CPU threads (default: the cores free when the run starts; "
                                               "the same as train.threads=N)")
    args = p.parse_intermixed_args(argv)
    overrides = args.overrides + ([f"train.threads={args.threads}"] if args.threads is not None else [])
    cfg = load(args.config, overrides)
    check_fits(cfg)
    out = args.out or os.path.join("runs", f"{cfg.name}-{config_hash(cfg)}")
    check_writable_dir(out)
    if not args.resume and os.path.exists(os.path.join(out, "checkpoint")):
        raise UserError(f"{out}: already holds a run; pass --resume to continue it or choose another --out")
    if args.nproc != 1:
        from foundry.training.launch import launch, without_nproc
        return launch("train", without_nproc(argv) + ([] if args.out else ["--out", out]), args.nproc, cfg, out)
    from foundry.training.loop import train
    try:
        summary = train(cfg, out, resume=args.resume)
    except UserError:
        raise
    except Exception as e:  # a crash in model code: record it, then fail loudly
        if os.path.isdir(out):
            from foundry.training.launch import rank_prefix
            failed = {"status": "failed", "error": f"{rank_prefix()}{type(e).__name__}: {e}",
                      "traceback": traceback.format_exc()[-4000:], "config_hash": config_hash(cfg)}
            write_json(os.path.join(out, "summary.json"), failed)
        traceback.print_exc()
        return 1
    return EXIT_CODES[summary["status"]]


def validate_main(argv) -> int:
    p = _parser("validate", "Load a config with overrides, check it, print it resolved with its hash.")
    _config_args(p)
    p.add_argument("--json", action="store_true", help="print the config as JSON")
    args = p.parse_intermixed_args(argv)
    cfg = load(args.config, args.overrides)
    check_fits(cfg)
    if args.json:
        from foundry.config import to_dict
        print(json.dumps({"config_hash": config_hash(cfg), "config": to_dict(cfg)}, indent=2))
    else:
        print(dumps(cfg), end="")
        print(f"# ok: config_hash {config_hash(cfg)}, {cfg.max_steps() or 'time-bounded'} steps")
    return 0


def sample_main(argv) -> int:
    p = _parser("sample", "Generate text from a checkpoint (a run folder or its checkpoint/).\n\n"
                          "  foundry sample runs/tiny --prompt 'def ' --tokens 200")
    p.add_argument("checkpoint", help="run folder or checkpoint folder")
    p.add_argument("--prompt", default="", help="text to continue (default: empty, a fresh document)")
    p.add_argument("--tokens", type=int, default=200, help="new tokens to generate (default: 200)")
    p.add_argument("--temperature", type=float, default=0.8, help="0 = greedy (default: 0.8)")
    p.add_argument("--top-k", type=int, default=50, help="sample among the K likeliest tokens; 0 = all (default: 50)")
    p.add_argument("--seed", type=int, default=0, help="sampling seed (default: 0)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N (default: auto)")
    args = p.parse_args(argv)
    if args.tokens < 1:
        raise UserError(f"--tokens: must be at least 1, got {args.tokens}")
    if not 0 <= args.temperature <= 100:   # also refuses nan
        raise UserError(f"--temperature: must be in [0, 100] (0 = greedy), got {args.temperature}")
    if args.top_k < 0:
        raise UserError(f"--top-k: must not be negative (0 = all tokens), got {args.top_k}")
    if not 0 <= args.seed < 2 ** 63:
        raise UserError(f"--seed: must be in [0, 2^63), got {args.seed}")
    import torch

    from foundry.data.dataset import DOCUMENT_SEPARATOR
    from foundry.hardware import pick_device
    from foundry.weights.checkpoint import load_model
    device = pick_device(args.device, "--device")
    model, tokenizer, cfg = load_model(args.checkpoint, device)
    prompt = tokenizer.encode(args.prompt)
    # no prompt: start where every training document starts, after the separator, and print only new text
    context = (prompt or _encode_or_empty(tokenizer, DOCUMENT_SEPARATOR) or [0])[-(cfg.model.block_size - 1):]
    torch.manual_seed(args.seed)
    idx = torch.tensor([context], dtype=torch.long, device=device)
    out = model.generate(idx, args.tokens, temperature=args.temperature, top_k=args.top_k or None)[0].tolist()
    sys.stdout.write(tokenizer.decode(out if prompt else out[len(context):]) + "\n")
    return 0


def _encode_or_empty(tokenizer, text: str) -> list[int]:
    try:
        return tokenizer.encode(text)
    except UserError:   # a char vocabulary without a newline
        return []


def main(argv=None) -> int:
    """`python -m foundry.training.cli SUBCOMMAND ...`: the trainer's commands without the rest of foundry."""
    from foundry.training.rung import rung_train_main
    argv = list(sys.argv[1:] if argv is None else argv)
    commands = {"train": train_main, "train-rung": rung_train_main, "validate": validate_main, "sample": sample_main}
    if not argv or argv[0] not in commands:
        print(f"usage: python -m foundry.training.cli {{{','.join(commands)}}} ...", file=sys.stderr)
        return 2
    return run_command(f"foundry {argv[0]}", commands[argv[0]], argv[1:])


if __name__ == "__main__":
    sys.exit(main())
