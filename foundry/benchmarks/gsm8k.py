"""GSM8K: grade-school math word problems, scored by exact match of the final number.

    foundry eval RUN_DIR --tasks gsm8k --limit 100 [--shots 5]
    foundry eval --samples completions.jsonl --tasks gsm8k     # {"task_id": LINE_INDEX, "completion": ...}

Data: the upstream JSONL (`question`, `answer` ending in `#### N`), DATA/gsm8k/{train,test}.jsonl or
--path gsm8k=TEST.jsonl (train.jsonl beside it supplies the shots). The prompt holds k solved train
problems ("Question: ...\\nAnswer: ...\\n\\n", calculator annotations <<...>> removed) and then the test
question; greedy generation stops at a blank line or the next "Question:". The final number of the
generation (after "####" if present, else after "answer is", else the last number) is compared with
the gold number as a decimal: commas, signs, "$", trailing units and "18.00" vs "18" are handled.
That lenient `exact_match` is the score. Next to it, for comparison with published numbers, the
result holds lm-eval's two answers of the same generations (its gsm8k task, version 3):
`strict_match` (the first "#### N" only) and `flexible_extract` (the last number-like string),
both compared as lm-eval's exact_match does: commas, "$", everything up to "#### " and a final
"." removed from prediction and gold, case ignored, then string equality ("18.00" != "18").
"""
from __future__ import annotations

import os
import random
import re
from decimal import Decimal, InvalidOperation

from foundry.benchmarks.common import (
    EvalOptions,
    data_path,
    fit_shots,
    limited,
    make_result,
)
from foundry.data.jsonl import read_jsonl
from foundry.errors import UserError

# a sign only where it cannot be a hyphen ("3-4", "5-year"); thousands groups of exactly 3 digits
NUMBER = re.compile(r"(?<![\w.])([-\u2212])?\$?((?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?)|"
                    r"((?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?)")
CALCULATOR = re.compile(r"<<[^>]*>>")
ANSWER_IS = re.compile(r"answer is", re.IGNORECASE)
STOP = ["\n\n", "Question:"]
# lm-eval's gsm8k filters and exact_match settings (lm_eval/tasks/gsm8k/gsm8k.yaml)
LM_EVAL_FILTERS = {"strict_match": (re.compile(r"#### (\-?[0-9\.\,]+)"), 0),        # (regex, which match)
                   "flexible_extract": (re.compile(r"(-?[$0-9.,]{2,})|(-?[0-9]+)"), -1)}
LM_EVAL_IGNORE = [re.compile(","), re.compile(r"\$"), re.compile(r"(?s).*#### "), re.compile(r"\.$")]
INVALID = "[invalid]"


def lm_eval_extract(text: str, name: str) -> str:
    """lm-eval's RegexFilter: the chosen match (a group tuple gives its first non-empty group), stripped."""
    regex, which = LM_EVAL_FILTERS[name]
    found = regex.findall(text)
    if not found:
        return INVALID
    match = found[which]
    if isinstance(match, tuple):
        match = next((m for m in match if m), INVALID)
    return match.strip()


def lm_eval_normalize(text: str) -> str:
    """lm-eval's exact_match with gsm8k's regexes_to_ignore and ignore_case."""
    for regex in LM_EVAL_IGNORE:
        text = regex.sub("", text)
    return text.lower()


def _numbers(text: str) -> list[str]:
    """Every number in `text` as a canonical decimal string, in order."""
    out = []
    for match in NUMBER.finditer(text):
        sign, digits = (match.group(1), match.group(2)) if match.group(2) else (None, match.group(3))
        try:
            value = Decimal(digits.replace(",", ""))
        except InvalidOperation:
            continue
        out.append(canonical(-value if sign else value))
    return out


def canonical(value: Decimal) -> str:
    """18, 18.0 and 18.00 all read "18"; 3.50 reads "3.5"."""
    if value == value.to_integral_value():
        return str(int(value))
    return format(value.normalize(), "f")


def extract_answer(text: str) -> str | None:
    """The final numeric answer of a solution or a generation, or None when it holds no number."""
    if "####" in text:
        found = _numbers(text.split("####", 1)[1])
        if found:
            return found[0]
    marks = list(ANSWER_IS.finditer(text))
    if marks:
        found = _numbers(text[marks[-1].end():])
        if found:
            return found[0]
    found = _numbers(text)
    return found[-1] if found else None


def load_split(path: str) -> list[dict]:
    """Rows with `gold`: the number after "####", parsed strictly (not by the extractor under test)."""
    rows = read_jsonl(path, ("question", "answer"))
    for row in rows:
        tail = row["answer"].rsplit("####", 1)[-1].strip().replace(",", "") if "####" in row["answer"] else ""
        try:
            row["gold"] = canonical(Decimal(tail))
        except InvalidOperation:
            raise UserError(f"{path}:{row['_line']}: answer does not end in '#### NUMBER'") from None
    return rows


def format_example(question: str, answer: str | None = None) -> str:
    if answer is None:
        return f"Question: {question.strip()}\nAnswer:"
    return f"Question: {question.strip()}\nAnswer: {CALCULATOR.sub('', answer).strip()}\n\n"


class GSM8K:
    name = "gsm8k"
    chance = 0.0
    default_shots = 5
    default_max_new_tokens = 256

    def __init__(self, opts: EvalOptions):
        self.opts = opts

    def test_rows(self) -> list[dict]:
        self.test_path = data_path(self.opts, self.name, os.path.join("gsm8k", "test.jsonl"))
        return load_split(self.test_path)

    def shots(self, k: int) -> list[str]:
        if k == 0:
            return []
        train_path = os.path.join(os.path.dirname(self.test_path), "train.jsonl")
        if not os.path.isfile(train_path):
            raise UserError(f"gsm8k: shots need {train_path} (or pass --shots 0)")
        train = load_split(train_path)
        picked = random.Random(self.opts.seed).sample(train, min(k, len(train)))
        return [format_example(r["question"], r["answer"]) for r in picked]

    def evaluate(self, lm) -> dict:
        rows = limited(self.test_rows(), self.opts)
        k = self.default_shots if self.opts.shots is None else self.opts.shots
        shots = self.shots(k)
        max_new = self.opts.max_new_tokens or self.default_max_new_tokens
        budget = lm.prompt_budget(max_new)
        prompts, used = [], []
        for row in rows:
            prompt, n = fit_shots(lm.num_tokens, "", shots, format_example(row["question"]), budget)
            prompts.append(prompt)
            used.append(n)
        completions = lm.generate(prompts, max_new, STOP)
        items = [self.score_one(i, row, text) | {"shots": n}
                 for i, (row, text, n) in enumerate(zip(rows, completions, used))]
        return self.result(items, shots_requested=k)

    def score_one(self, index: int, row: dict, completion: str) -> dict:
        pred = extract_answer(completion)
        item = {"task_id": index, "gold": row["gold"], "pred": pred, "correct": pred == row["gold"],
                "completion": completion}
        gold = lm_eval_normalize(row["answer"])
        for name in LM_EVAL_FILTERS:
            answer = lm_eval_extract(completion, name)
            item[name] = {"answer": answer, "correct": lm_eval_normalize(answer) == gold}
        return item

    def result(self, items: list[dict], **details) -> dict:
        n = max(1, len(items))
        acc = sum(it["correct"] for it in items) / n
        lm_eval = {name: sum(it[name]["correct"] for it in items) / n for name in LM_EVAL_FILTERS}
        return make_result(self.name, "exact_match", acc, self.chance, items, **lm_eval, **details)

    def score_samples(self, path: str) -> dict:
        """Score completions made elsewhere: JSONL of {"task_id": test line index (0-based), "completion"}."""
        rows = self.test_rows()
        items = []
        for record in read_jsonl(path, ("task_id", "completion")):
            task_id = record["task_id"]
            if isinstance(task_id, str) and task_id.strip().isdigit():
                task_id = int(task_id)
            if not isinstance(task_id, int) or not 0 <= task_id < len(rows):
                raise UserError(f"{path}:{record['_line']}: task_id {record['task_id']!r} is not a line index "
                                f"of {self.test_path} (0..{len(rows) - 1})")
            if not isinstance(record["completion"], str):
                raise UserError(f"{path}:{record['_line']}: completion must be a string")
            items.append(self.score_one(task_id, rows[task_id], record["completion"]))
        return self.result(limited(items, self.opts), samples=path)
