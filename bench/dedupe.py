"""Bench: near-duplicate detection (MinHash LSH, the near_dup filter) on a corpus with injected duplicates.

    FOUNDRY_DATA=../shared/data python bench/dedupe.py                   # 7,473 GSM8K docs + 750 copies
    FOUNDRY_DATA=../shared/data python bench/dedupe.py --copies 2000 --threshold 0.7

Corpus: every GSM8K train record as one document ("question\\nanswer"), plus `--copies` edited copies
of randomly chosen originals, shuffled in. Each copy gets word-level edits (a word replaced, deleted
or a random word inserted) at a rate drawn from 0..`--max-edit`, so its true Jaccard similarity to its
original (over the filter's word 5-gram shingles) ranges from 1 down to well below the threshold.
Ground truth: a copy is a true near duplicate when its exact shingle Jaccard with its original is >=
the threshold. Recall: true near duplicates the filter removed / all true ones (and per band of true
Jaccard). Precision: removed documents whose exact Jaccard with the document they were matched to is
>= the threshold / removed (the filter checks candidates exactly, so this measures that check).
Throughput: documents per second of the near_dup filter alone (signatures, LSH, checks), one process.
"""
import argparse
import json
import os
import random
import time

from foundry.data.dedupe import near_duplicate_pairs, shingles


def jaccard(a: str, b: str, ngram: int) -> float:
    x, y = shingles(a, ngram), shingles(b, ngram)
    return len(x & y) / len(x | y)


def edited(text: str, rate: float, rng: random.Random, vocabulary: list[str]) -> str:
    out = []
    for word in text.split(" "):
        roll = rng.random()
        if roll < rate / 3:
            out.append(rng.choice(vocabulary))          # replaced
        elif roll < 2 * rate / 3:
            continue                                     # deleted
        elif roll < rate:
            out += [word, rng.choice(vocabulary)]        # an inserted word
        else:
            out.append(word)
    return " ".join(out)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default=os.environ.get("FOUNDRY_DATA"))
    p.add_argument("--copies", type=int, default=750)
    p.add_argument("--max-edit", type=float, default=0.08, help="largest share of words edited in a copy")
    p.add_argument("--threshold", type=float, default=0.8)
    p.add_argument("--num-perm", type=int, default=128)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    if not args.data:
        raise SystemExit("set FOUNDRY_DATA or pass --data")
    with open(os.path.join(args.data, "gsm8k", "train.jsonl"), encoding="utf-8") as f:
        originals = [r["question"] + "\n" + r["answer"] for r in map(json.loads, f)]
    rng = random.Random(args.seed)
    vocabulary = sorted({w for doc in originals[:500] for w in doc.split()})
    docs = [(doc, None) for doc in originals]                     # (text, index of its original or None)
    for _ in range(args.copies):
        source = rng.randrange(len(originals))
        docs.append((edited(originals[source], rng.uniform(0, args.max_edit), rng, vocabulary), source))
    rng.shuffle(docs)
    texts = [t for t, _ in docs]
    similarity = {k: jaccard(text, originals[origin], 5) for k, (text, origin) in enumerate(docs) if origin is not None}
    truth = {k: s >= args.threshold for k, s in similarity.items()}
    start = time.perf_counter()
    found = near_duplicate_pairs(texts, args.threshold, args.num_perm, 5)
    seconds = time.perf_counter() - start
    removed = {i: j for i, j, _ in found}
    correct = sum(jaccard(texts[i], texts[j], 5) >= args.threshold for i, j in removed.items())
    true_positive = [k for k, is_dup in truth.items() if is_dup]
    # a copy may come before its original in the shuffled corpus: then the original is the one removed
    matched_to = set(removed.values())
    detected = sum(1 for k in true_positive if k in removed or k in matched_to)
    print(f"corpus: {len(originals):,} GSM8K documents + {args.copies:,} edited copies (edit rate 0..{args.max_edit:.0%});"
          f" threshold {args.threshold}, {args.num_perm} permutations, word 5-grams")
    print(f"true near duplicates (exact Jaccard >= {args.threshold}): {len(true_positive):,}")
    print(f"removed: {len(removed):,}; precision {correct / max(1, len(removed)):.4f}; "
          f"recall {detected / max(1, len(true_positive)):.4f}")
    bands = [(args.threshold, args.threshold + 0.05), (args.threshold + 0.05, args.threshold + 0.1),
             (args.threshold + 0.1, 1.01)]
    for low, high in bands:
        members = [k for k in true_positive if low <= similarity[k] < high]
        hits = sum(1 for k in members if k in removed or k in matched_to)
        print(f"  recall for Jaccard in [{low:.2f}, {min(high, 1.0):.2f}{']' if high > 1 else ')'}: "
              f"{hits / max(1, len(members)):.4f} ({len(members)} copies)")
    print(f"near_dup: {len(texts):,} documents in {seconds:.1f} s = {len(texts) / seconds:,.0f} documents/s")


if __name__ == "__main__":
    main()
