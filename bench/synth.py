"""Bench: self-instruct throughput and the share kept by the ROUGE-L filter, from a small model; prints figures.

    FOUNDRY_DATA=../shared/data python bench/synth.py                      # trains ~300 steps, then synthesizes
    FOUNDRY_DATA=../shared/data python bench/synth.py --model runs/x       # an existing Foundry checkpoint

The model: 4 layers x 128, BPE (1024), trained briefly on GSM8K train questions laid out as
self-instruct sees them: task lists ("Come up with a series of tasks: Task 1: ... Task 2: ...") and
"Instruction: ...\\nResponse: ..." records (format none), so that it has seen both prompts. Seeds: the
first 20 GSM8K test questions. Figures: kept instructions per minute (wall clock of generation,
responses included), candidates per minute, the share of candidates kept, and what dropped the rest
(the ROUGE-L >= 0.7 similarity filter among them).
"""
import argparse
import json
import os
import random
import tempfile
import time

import foundry
from foundry.data.generation import sample
from foundry.data.synth import self_instruct, task_prompt


def corpus(data_dir: str, folder: str, shots: int) -> str:
    with open(os.path.join(data_dir, "gsm8k", "train.jsonl"), encoding="utf-8") as f:
        records = [json.loads(line) for line in f]
    rng = random.Random(0)
    docs = [f"Instruction: {r['question']}\nResponse: {r['answer'].split('####')[-1].strip()}" for r in records]
    questions = [r["question"] for r in records]
    for _ in range(len(records)):
        listed = rng.sample(questions, shots + 1)
        docs.append(task_prompt(listed[:-1]) + " " + listed[-1])
    rng.shuffle(docs)
    path = os.path.join(folder, "selfinstruct_corpus.jsonl")
    with open(path, "w", encoding="utf-8") as out:
        out.writelines(json.dumps({"text": d}) + "\n" for d in docs)
    return path


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default=os.environ.get("FOUNDRY_DATA"))
    p.add_argument("--model", help="an existing Foundry checkpoint (skips training)")
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("-n", type=int, default=40, help="instructions to keep")
    p.add_argument("--shots", type=int, default=4)
    p.add_argument("--max-rounds", type=int, default=8)
    args = p.parse_args()
    if not args.data:
        raise SystemExit("set FOUNDRY_DATA or pass --data")
    with tempfile.TemporaryDirectory() as tmp:
        run = args.model
        if run is None:
            source = corpus(args.data, tmp, args.shots)
            with open(os.path.join(tmp, "cfg.yaml"), "w") as f:
                f.write("name: synth_bench\n")
            cfg = foundry.load_config(os.path.join(tmp, "cfg.yaml"), [
                f"data.source={source}", "data.tokenizer=bpe", "data.bpe_vocab_size=1024", "model.n_layer=4",
                "model.n_embd=128", "model.n_head=4", "model.block_size=384", "train.batch_size=8",
                f"budget.steps={args.steps}", "eval.interval=100000", "eval.bytes=8192"])
            run = os.path.join(tmp, "run")
            summary = foundry.train(cfg, run)
            print(f"model: trained {summary['steps']} steps in {summary['wall_s']:.0f} s, val_bpb {summary['val_bpb']:.3f}")
        model, tokenizer, cfg = foundry.load(run)
        with open(os.path.join(args.data, "gsm8k", "test.jsonl"), encoding="utf-8") as f:
            seeds = [json.loads(line)["question"] for _, line in zip(range(20), f)]
        calls = {"n": 0}

        def generate(prompts, stop):
            calls["n"] += 1
            return sample(model, tokenizer, prompts, 96, 0.8, 0.95, stop, seed=calls["n"], batch_size=16)

        start = time.perf_counter()
        records, counts = self_instruct(generate, seeds, args.n, cfg.data.format, seed=0, model=run,
                                        shots=args.shots, per_round=16, max_rounds=args.max_rounds)
        minutes = (time.perf_counter() - start) / 60
    print(f"seeds: {len(seeds)} GSM8K test questions; {counts['candidates']} candidates in {minutes:.2f} min")
    print(f"kept: {counts['kept']} = {counts['kept'] / minutes:.1f} instructions/min "
          f"({counts['candidates'] / minutes:.1f} candidates/min)")
    print(f"kept share: {counts['kept'] / max(1, counts['candidates']):.2%}; dropped: " +
          ", ".join(f"{k} {counts[k]}" for k in ("empty", "length", "duplicate", "similar", "bad_response", "surplus")))
    print(f"similarity filter (ROUGE-L >= 0.7) dropped {counts['similar'] / max(1, counts['candidates']):.2%} of candidates")
    for record in records[:3]:
        print("example:", json.dumps({k: record[k] for k in ("instruction", "output")})[:300])


if __name__ == "__main__":
    main()
