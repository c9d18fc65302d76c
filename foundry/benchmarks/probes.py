"""Synthetic probes that tiny models can learn, generated from a seed: MQAR and n-digit addition.

    foundry eval RUN_DIR --tasks mqar,addition [--limit 200] [--seed 1234]
    text = mqar_text(seed=0, examples=10_000)        # training text in the same format
    text = addition_text(seed=0, examples=10_000, digits=3)

MQAR (multi-query associative recall, Arora et al. 2023 "Zoology"): key:value pairs, a bar, then
every key again in a new order; each query's value is scored (and only those):
    "q:4 c:7 x:1 | x:1 q:4 c:7\\n"        keys a-z, values 0-9 (chance 1/10 per query)
Addition: k solved examples as context, then "a+b=" and the sum, scored by exact match:
    "12+30=42\\n905+17=922\\n481+356="  ->  "837\\n"   (the newline too: the answer must end)
A query or sum counts as correct when greedy decoding reproduces it exactly (every token is the
argmax given the true prefix). Use a different seed for training text than for evaluation.
"""
from __future__ import annotations

import random
import string

from foundry.benchmarks.common import EvalOptions, make_result

KEYS = string.ascii_lowercase
VALUES = string.digits


def mqar_segments(rng: random.Random, pairs: int = 8) -> list[tuple[str, bool]]:
    """One MQAR example as (text, scored) segments; the scored ones are the queried values."""
    keys = rng.sample(KEYS, pairs)
    values = [rng.choice(VALUES) for _ in keys]
    segments = [(" ".join(f"{k}:{v}" for k, v in zip(keys, values)) + " |", False)]
    for i in rng.sample(range(pairs), pairs):
        segments += [(f" {keys[i]}:", False), (values[i], True)]
    segments.append(("\n", False))
    return segments


def addition_pair(rng: random.Random, digits: int) -> tuple[str, str]:
    """("a+b=", "sum") with a and b of 1..digits digits (uniform over digit counts, then values)."""
    a, b = (rng.randrange(10 ** (rng.randint(1, digits))) for _ in range(2))
    return f"{a}+{b}=", str(a + b)


def mqar_text(seed: int, examples: int, pairs: int = 8) -> str:
    rng = random.Random(seed)
    examples_text = []
    for _ in range(examples):
        examples_text.append("".join(text for text, _scored in mqar_segments(rng, pairs)))
    return "".join(examples_text)


def addition_text(seed: int, examples: int, digits: int = 3) -> str:
    rng = random.Random(seed)
    return "".join(q + a + "\n" for q, a in (addition_pair(rng, digits) for _ in range(examples)))


class MQAR:
    name = "mqar"
    chance = 1.0 / len(VALUES)
    default_examples = 200
    pairs = 8

    def __init__(self, opts: EvalOptions):
        self.opts = opts

    def evaluate(self, lm) -> dict:
        rng = random.Random(self.opts.seed)
        examples = [mqar_segments(rng, self.pairs) for _ in range(self.opts.limit or self.default_examples)]
        scored = lm.score(examples)
        items = [{"index": i, "queries": len(s), "correct": sum(greedy for _, greedy in s),
                  "text": "".join(t for t, _ in ex)} for i, (ex, s) in enumerate(zip(examples, scored))]
        queries = sum(it["queries"] for it in items)
        acc = sum(it["correct"] for it in items) / max(1, queries)
        return make_result(self.name, "query_acc", acc, self.chance, items, queries=queries, pairs=self.pairs)


class Addition:
    name = "addition"
    chance = 0.0
    default_examples = 200
    default_shots = 3
    digits = 3

    def __init__(self, opts: EvalOptions):
        self.opts = opts

    def evaluate(self, lm) -> dict:
        rng = random.Random(self.opts.seed)
        shots = self.default_shots if self.opts.shots is None else self.opts.shots
        requests, golds = [], []
        for _ in range(self.opts.limit or self.default_examples):
            context = "".join(q + a + "\n" for q, a in (addition_pair(rng, self.digits) for _ in range(shots)))
            question, answer = addition_pair(rng, self.digits)
            requests.append((context + question, answer + "\n"))  # the newline: the answer must end
            golds.append(question + answer)
        scores = lm.loglikelihood(requests)
        items = [{"index": i, "problem": g, "correct": greedy, "logprob": round(lp, 4)}
                 for i, (g, (lp, greedy)) in enumerate(zip(golds, scores))]
        acc = sum(it["correct"] for it in items) / max(1, len(items))
        return make_result(self.name, "exact_match", acc, self.chance, items, digits=self.digits, shots=shots)
