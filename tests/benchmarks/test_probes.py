"""Probes: MQAR and addition generators are deterministic per seed and well formed; scoring
happens only at query positions; addition is exact match under greedy decoding."""
import random

import pytest

from foundry.benchmarks.common import EvalOptions
from foundry.benchmarks.probes import (
    MQAR,
    Addition,
    addition_pair,
    addition_text,
    mqar_segments,
    mqar_text,
)


def test_generators_are_deterministic_per_seed():
    assert mqar_text(seed=1, examples=5) == mqar_text(seed=1, examples=5) != mqar_text(seed=2, examples=5)
    assert addition_text(seed=1, examples=5) == addition_text(seed=1, examples=5)


def test_mqar_example_is_consistent():
    segments = mqar_segments(random.Random(0), pairs=6)
    text = "".join(t for t, _ in segments)
    context, queries = text.split(" |")
    pairs = dict(item.split(":") for item in context.split())
    assert len(pairs) == 6 and all(len(v) == 1 and v.isdigit() for v in pairs.values())
    asked = [q.split(":") for q in queries.split()]
    assert sorted(k for k, _ in asked) == sorted(pairs) and all(pairs[k] == v for k, v in asked)
    scored = [t for t, s in segments if s]
    assert scored == [v for _, v in asked]  # only the queried values are scored


def test_addition_pairs_are_correct_sums():
    rng = random.Random(0)
    for _ in range(200):
        question, answer = addition_pair(rng, 4)
        a, b = question[:-1].split("+")
        assert int(a) + int(b) == int(answer) and max(len(a), len(b)) <= 4
    lines = addition_text(seed=3, examples=50, digits=2).splitlines()
    assert len(lines) == 50 and all(eval_line(line) for line in lines)


def eval_line(line):
    left, total = line.split("=")
    a, b = left.split("+")
    return int(a) + int(b) == int(total)


def test_mqar_scores_only_query_positions(tiny_lm, bigram):
    result = MQAR(EvalOptions(limit=6, seed=5)).evaluate(tiny_lm)
    assert result["queries"] == 6 * MQAR.pairs and result["n"] == 6 and result["chance"] == pytest.approx(0.1)
    assert result["items"][0]["text"] == "".join(t for t, _ in mqar_segments(random.Random(5), MQAR.pairs))
    # a model that always answers "3" after a colon is right exactly on the queries whose value is 3
    # (the colons of the context are not scored: a scorer that counted them would get another figure)
    exact = MQAR(EvalOptions(limit=20, seed=5)).evaluate(bigram({":": "3"}))
    asked = [q.split(":")[1] for it in exact["items"] for q in it["text"].split(" |")[1].split()]
    assert len(asked) == exact["queries"] == 20 * MQAR.pairs
    expected = sum(value == "3" for value in asked) / len(asked)
    assert 0 < expected < 1 and exact["score"] == pytest.approx(expected)
    assert [it["correct"] for it in exact["items"]] == [
        sum(q.split(":")[1] == "3" for q in it["text"].split(" |")[1].split()) for it in exact["items"]]


def test_addition_exact_match_with_a_bigram_model(bigram):
    # this model always answers "10" and a newline: exactly the sums equal to 10 are right
    lm = bigram({"=": "1", "1": "0", "0": "\n"})
    result = Addition(EvalOptions(limit=400, seed=0, shots=1)).evaluate(lm)
    expected = [it["problem"].split("=")[1] == "10" for it in result["items"]]
    assert [it["correct"] for it in result["items"]] == expected and any(expected)
    assert result["score"] == pytest.approx(sum(expected) / 400)
    # a model that never ends its answer is never right, even when its digits are
    endless = Addition(EvalOptions(limit=400, seed=0, shots=1)).evaluate(bigram({"=": "1", "1": "0", "0": "0"}))
    assert endless["score"] == 0.0
