"""Bench: data.packing bin vs random on many short documents (GSM8K questions + answers); prints figures.

    FOUNDRY_DATA=../shared/data python bench/packing.py                 # 2-layer model, 150 steps each
    FOUNDRY_DATA=../shared/data python bench/packing.py --steps 400 --block 512

Each GSM8K train record becomes one document ("question\\nanswer", ~200 tokens in bytes), written to
a temporary JSONL (never into the repository). The same model and budget train once per packing.
Figures: tokens/s (row slots, padding included, as the trainer counts), target tokens/s (positions
that carry loss: random windows train on every position; bin rows lose padding and each piece's first
token), the waste of bin (padding share, split documents), and val_bpb on the frozen validation slice.
That slice is the joined validation text scored without document masks, so a bin-trained model is
scored on windows that cross documents, as a random-trained one is trained.
"""
import argparse
import json
import os
import tempfile

import foundry


def corpus(data_dir: str, folder: str) -> str:
    path = os.path.join(folder, "gsm8k_docs.jsonl")
    with open(os.path.join(data_dir, "gsm8k", "train.jsonl"), encoding="utf-8") as f, \
            open(path, "w", encoding="utf-8") as out:
        for line in f:
            record = json.loads(line)
            out.write(json.dumps({"text": record["question"] + "\n" + record["answer"]}) + "\n")
    return path


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default=os.environ.get("FOUNDRY_DATA"), help="the shared data folder")
    p.add_argument("--steps", type=int, default=150)
    p.add_argument("--block", type=int, default=256)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--width", type=int, default=128)
    args = p.parse_args()
    if not args.data:
        raise SystemExit("set FOUNDRY_DATA or pass --data")
    with tempfile.TemporaryDirectory() as tmp:
        source = corpus(args.data, tmp)
        cfg_path = os.path.join(tmp, "cfg.yaml")
        with open(cfg_path, "w") as f:
            f.write("name: packing_bench\n")
        rows = []
        for packing in ("random", "bin"):
            cfg = foundry.load_config(cfg_path, [
                f"data.source={source}", f"data.packing={packing}", f"model.n_layer={args.layers}",
                f"model.n_embd={args.width}", "model.n_head=4", f"model.block_size={args.block}",
                f"train.batch_size={args.batch}", f"budget.steps={args.steps}", "train.warmup_steps=20",
                "eval.interval=100000", "eval.bytes=16384"])
            summary = foundry.train(cfg, os.path.join(tmp, packing))
            stats = summary["data"].get("packing", {})
            target_share = 1.0 if packing == "random" else (1 - stats["padding_share"]) * (1 - stats["boundary_share"])
            rows.append((packing, summary, stats, target_share))
    print(f"corpus: GSM8K train, {rows[0][1]['data']['documents']:,} documents, "
          f"{rows[0][1]['data']['train_tokens']:,} train tokens (byte); model {args.layers}x{args.width}, "
          f"block {args.block}, batch {args.batch}, {args.steps} steps")
    print(f"{'packing':<8} {'tokens/s':>9} {'target tok/s':>12} {'val_bpb':>8} {'padding':>8} {'split docs':>10} {'rows':>6}")
    for packing, summary, stats, share in rows:
        print(f"{packing:<8} {summary['tokens_per_s']:>9,.0f} {summary['tokens_per_s'] * share:>12,.0f} "
              f"{summary['val_bpb']:>8.4f} {stats.get('padding_share', 0.0):>8.2%} "
              f"{stats.get('split_documents', 0):>10,} {stats.get('rows', 0):>6,}")


if __name__ == "__main__":
    main()
