"""Self-instruct (Wang et al. 2022): new instructions and responses from a model and a few seed tasks.

    records, counts = self_instruct(generate, seeds, n=100, fmt="chatml", seed=0, model="runs/x")
    # foundry data synth --model runs/x --seeds seeds.jsonl --out synth.jsonl -n 100

Rounds until `n` instructions are kept (or `max_rounds`): each prompt lists `shots` instructions,
drawn from the seeds and (up to 2 per prompt, as in the paper) from those already kept, as
"Task 1: ...", and asks for the next task. A new instruction is kept only if it is not empty, has
3..150 words, is not a duplicate, and its ROUGE-L F-measure with every instruction kept so far,
seeds included, is below `rouge_threshold` (0.7, as in the paper). Each kept instruction then gets a
response in the model's own chat format (its checkpoint's data.format; `none` uses
"Instruction: ...\\nResponse:"), cut at the format's end-of-turn marker; empty or too long
responses drop the record. Records are {instruction, output, provenance: {model, seed, round,
prompt, rouge_max}}: an `instruction/output` JSONL that chat formats read (data.format).
`generate(prompts, stop) -> texts` is a batched sampler (generation.sample bound to a model).
"""
from __future__ import annotations

import random
import re
import time

from foundry.data.formats import render_record
from foundry.data.jsonl import read_jsonl
from foundry.errors import UserError

WORD = re.compile(r"[a-z0-9]+")
MARK = "\ue002"  # stands for the response while a chat template renders the prompt


def rouge_l(a: list[str], b: list[str]) -> float:
    """ROUGE-L F-measure (Lin 2004) of two token lists: from their longest common subsequence."""
    if not a or not b:
        return 0.0
    previous = [0] * (len(b) + 1)
    for x in a:
        current = [0]
        for j, y in enumerate(b):
            current.append(previous[j] + 1 if x == y else max(previous[j + 1], current[j]))
        previous = current
    lcs = previous[-1]
    if lcs == 0:
        return 0.0
    precision, recall = lcs / len(a), lcs / len(b)
    return 2 * precision * recall / (precision + recall)


def words(text: str) -> list[str]:
    return WORD.findall(text.lower())


def load_seeds(path) -> list[str]:
    """Instructions of a seed file: JSONL records with an `instruction` (self-instruct / Alpaca) or `question`."""
    seeds = []
    for record in read_jsonl(str(path), what="seed tasks"):
        text = record.get("instruction", record.get("question"))
        if not isinstance(text, str) or not text.strip():
            raise UserError(f"{path}:{record['_line']}: expected a string 'instruction' (or 'question')")
        seeds.append(text.strip())
    return seeds


def response_prompt(fmt: str, instruction: str) -> tuple[str, str]:
    """(prompt, stop): the chat format's text up to the response, and what ends the response."""
    if fmt == "none":
        return f"Instruction: {instruction}\nResponse:", "\n\n"
    before, after = render_record(fmt, {"instruction": instruction, "output": MARK}, "synth").split(MARK)
    return before, after.strip() or "\n\n"


def task_prompt(instructions: list[str]) -> str:
    listed = "".join(f"Task {i + 1}: {text}\n" for i, text in enumerate(instructions))
    return f"Come up with a series of tasks:\n\n{listed}Task {len(instructions) + 1}:"


def self_instruct(generate, seeds: list[str], n: int, fmt: str = "none", seed: int = 0, model: str = "",
                  shots: int = 6, per_round: int = 16, rouge_threshold: float = 0.7, max_rounds: int = 50,
                  max_response_words: int = 300, log=None) -> tuple[list[dict], dict]:
    """(records, counts): up to `n` new instruction/response records and why candidates were dropped."""
    if not seeds:
        raise UserError("synth: the seed file has no tasks")
    rng = random.Random(seed)
    pool = [(s, words(s)) for s in seeds]          # every kept instruction, seeds included
    kept, counts, start = [], {"candidates": 0, "empty": 0, "length": 0, "duplicate": 0, "similar": 0,
                               "bad_response": 0, "surplus": 0, "kept": 0}, time.perf_counter()
    for round_index in range(max_rounds):
        if len(kept) >= n:
            break
        prompts = []
        for _ in range(per_round):
            machine = rng.sample([k["instruction"] for k in kept], min(2, len(kept)))
            human = rng.sample(seeds, min(len(seeds), shots - len(machine)))
            prompts.append(task_prompt(rng.sample(human + machine, len(human + machine))))
        fresh = []
        for prompt, text in zip(prompts, generate(prompts, ["\nTask", "\n\n"])):
            counts["candidates"] += 1
            instruction = text.strip()
            tokens = words(instruction)
            if not tokens:
                counts["empty"] += 1
            elif not 3 <= len(tokens) <= 150:
                counts["length"] += 1
            elif any(tokens == other for _, other in pool):
                counts["duplicate"] += 1
            else:
                best = max(rouge_l(tokens, other) for _, other in pool)
                if best >= rouge_threshold:
                    counts["similar"] += 1
                else:
                    pool.append((instruction, tokens))
                    fresh.append((instruction, prompt, best))
        surplus = fresh[n - len(kept):]  # passed the filters, but n are already in hand
        counts["surplus"] += len(surplus)
        fresh = fresh[:n - len(kept)]
        pool = [entry for entry in pool if entry[0] not in {s[0] for s in surplus}]
        asks = [response_prompt(fmt, instruction) for instruction, _, _ in fresh]
        by_stop: dict[str, list[int]] = {}
        for i, (_, stop) in enumerate(asks):
            by_stop.setdefault(stop, []).append(i)
        responses = [""] * len(fresh)
        for stop, indices in by_stop.items():
            for i, text in zip(indices, generate([asks[i][0] for i in indices], [stop])):
                responses[i] = text.strip()
        for (instruction, prompt, best), output in zip(fresh, responses):
            if not output or len(output.split()) > max_response_words:
                counts["bad_response"] += 1
                continue
            kept.append({"instruction": instruction, "output": output,
                         "provenance": {"model": model, "seed": seed, "round": round_index, "prompt": prompt,
                                        "rouge_max": round(best, 4)}})
        if log:
            minutes = (time.perf_counter() - start) / 60
            log(f"synth: round {round_index + 1}: {len(kept)}/{n} kept of {counts['candidates']} candidates "
                f"({len(kept) / max(minutes, 1e-9):.1f} kept/min)")
    counts["kept"] = len(kept)
    counts["seconds"] = round(time.perf_counter() - start, 2)
    return kept, counts
