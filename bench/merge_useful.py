"""A useful merge: two fine-tunes of one Foundry base on different corpora (tiny Shakespeare and
the built-in Python corpus, both byte-level so their vocabularies agree), merged with linear, task
arithmetic and TIES (each at two settings); val_bpb of every model on both corpora, parents included.

    FOUNDRY_DATA=../shared/data python bench/merge_useful.py --runs runs/merge-useful [--json]
        [--base-tokens 1000000] [--ft-tokens 300000] [--eval-bytes 40960]

Trains what is missing under --runs (base: baselines/tiny.yaml on the built-in corpus; each
fine-tune starts from it with its config, lr 1e-3, fp32), merges into --runs/merged-*, and scores each model with the
trainer's own metric (foundry.evaluation.val_metrics, fp32 for every model) on each corpus's validation split.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import foundry  # noqa: E402
from foundry.io import read_summary  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CORPORA = {"shakespeare": "$FOUNDRY_DATA/tinyshakespeare.txt", "python": "builtin"}


def trained(folder: str, overrides: list[str], config: str = os.path.join(REPO, "baselines", "tiny.yaml")) -> str:
    if read_summary(folder) is None:
        cfg = foundry.load_config(config, overrides)
        print(f"training {folder} ({' '.join(overrides)})", flush=True)
        foundry.train(cfg, folder)
    return folder


def train_parents(runs: str, base_tokens: int, ft_tokens: int) -> dict:
    """The base and its two fine-tunes under `runs` (what is missing is trained): {name: folder}."""
    common = ["eval.interval=100000", "train.warmup_steps=5"]
    trained(os.path.join(runs, "base"), [f"budget.tokens={base_tokens}", "name=base", *common])
    fine = [f"budget.tokens={ft_tokens}", f"train.init_from={os.path.join(runs, 'base')}", "train.lr=1e-3",
            "train.min_lr=1e-4", "train.dtype=fp32", *common]
    base_config = os.path.join(runs, "base", "config.yaml")         # the fine-tunes keep the base's model
    trained(os.path.join(runs, "ft_shakespeare"), [*fine, f"data.source={CORPORA['shakespeare']}", "name=ft_shakespeare"],
            base_config)
    trained(os.path.join(runs, "ft_python"), [*fine, "data.source=builtin", "train.seed=7", "name=ft_python"], base_config)
    return {name: os.path.join(runs, name) for name in ("base", "ft_shakespeare", "ft_python")}


def recipes(runs: str) -> dict:
    base, s, p = (os.path.join(runs, n) for n in ("base", "ft_shakespeare", "ft_python"))
    both = lambda params: [{"model": m, "parameters": params} for m in (s, p)]  # noqa: E731
    return {
        "linear": {"merge_method": "linear", "models": both({"weight": 0.5})},
        "linear 0.3/0.7": {"merge_method": "linear", "models": [{"model": s, "parameters": {"weight": 0.3}},
                                                                {"model": p, "parameters": {"weight": 0.7}}]},
        "task_arithmetic": {"merge_method": "task_arithmetic", "base_model": base, "models": both({"weight": 1.0})},
        "task_arithmetic 0.5": {"merge_method": "task_arithmetic", "base_model": base, "models": both({"weight": 0.5})},
        "ties": {"merge_method": "ties", "base_model": base, "models": both({"weight": 1.0, "density": 0.5})},
        "ties 0.2": {"merge_method": "ties", "base_model": base, "models": both({"weight": 1.0, "density": 0.2})},
    }


def scores(folder: str, n_bytes: int) -> dict:
    from foundry.data import load_dataset
    from foundry.evaluation import val_metrics, val_slice
    import dataclasses
    model, _, cfg = foundry.load(folder)
    cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, dtype="fp32"))  # every model scored alike
    out = {}
    for corpus, source in CORPORA.items():
        data = cfg.data.__class__(**{**vars(cfg.data), "source": os.path.expandvars(source), "tokenizer": "byte"})
        dataset = load_dataset(data)
        tokens, per_token = val_slice(dataset.val, dataset.tokenizer.decode, n_bytes)   # the first n_bytes bytes
        out[corpus] = val_metrics(model, tokens, cfg, per_token, "cpu")["val_bpb"]
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", default=os.path.join(REPO, "runs", "merge-useful"))
    parser.add_argument("--base-tokens", type=int, default=1_000_000)
    parser.add_argument("--ft-tokens", type=int, default=300_000)
    parser.add_argument("--eval-bytes", type=int, default=40960,
                        help="validation bytes scored per corpus (20 batches of 16 windows of 128 bytes before the byte slice)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if not os.environ.get("FOUNDRY_DATA"):
        print("FOUNDRY_DATA is not set (the folder with tinyshakespeare.txt)")
        return 1
    runs = os.path.abspath(args.runs)
    train_parents(runs, args.base_tokens, args.ft_tokens)
    merged = {}
    for name, recipe in recipes(runs).items():
        out = os.path.join(runs, "merged-" + name.replace(" ", "-").replace("/", "-"))
        if not os.path.isdir(out):
            summary = foundry.merge.merge(recipe, out)
            print(f"merged {name}: {summary['tensors']} tensors in {summary['seconds']} s", flush=True)
        merged[name] = out
    models = {"base": "base", "ft_shakespeare": "ft_shakespeare", "ft_python": "ft_python",
              **{f"merge: {k}": os.path.basename(v) for k, v in merged.items()}}
    rows = [{"model": label, **scores(os.path.join(runs, folder), args.eval_bytes)} for label, folder in models.items()]
    for row in rows:
        row["mean"] = (row["shakespeare"] + row["python"]) / 2
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{'model':<28} {'shakespeare bpb':>16} {'python bpb':>11} {'mean':>7}")
    for r in rows:
        print(f"{r['model']:<28} {r['shakespeare']:>16.4f} {r['python']:>11.4f} {r['mean']:>7.4f}")
    return 0


if __name__ == "__main__":
    import foundry.merge  # noqa: F401,E402  (foundry.merge.merge above)
    sys.exit(main())
