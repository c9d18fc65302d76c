"""MMLU: four-way multiple choice over 57 subjects, scored by the log-likelihood of the answer letter.

    foundry eval RUN_DIR --tasks mmlu [--shots 5] [--limit 570]

Data: the upstream CSV layout, DATA/mmlu/{dev,val,test}/SUBJECT_{split}.csv (or --path mmlu=FOLDER):
no header; question, four options, answer letter. Every file present is read and counted (the
early release holds 14,079 test questions, the final one 14,042). The prompt is the Hendrycks
format: a header naming the subject, k solved questions from `dev` (default 5), then the question
and "Answer:"; the prediction is the letter among " A", " B", " C", " D" with the highest
log-likelihood. Shots that do not fit the model's context are dropped whole from the left (the
count used is recorded per item); a question that still does not fit loses its start to the
model's left truncation (`truncated`, per item and as a fraction). Score (metric `acc`): the micro average
over all questions, as lm-eval and the original evaluate.py report MMLU, so it compares with published
numbers; `acc_macro`, the mean of the subjects' accuracies (Foundry's headline before), and every
subject's accuracy are in the result too. --limit N takes questions round-robin over subjects.
`mmlu_val` is the same on the val split (for ranking during a search, keeping test untouched).
"""
from __future__ import annotations

import csv
import os

from foundry.benchmarks.common import (
    EvalOptions,
    data_path,
    fit_shots,
    limited,
    make_result,
)
from foundry.errors import UserError

LETTERS = ("A", "B", "C", "D")


def read_split(folder: str, split: str) -> dict[str, list[dict]]:
    """subject -> rows {question, choices, answer}, from folder/split/SUBJECT_split.csv."""
    split_dir = os.path.join(folder, split)
    if not os.path.isdir(split_dir):
        raise UserError(f"mmlu: folder {split_dir} not found")
    suffix = f"_{split}.csv"
    subjects = {}
    for name in sorted(os.listdir(split_dir)):
        if not name.endswith(suffix):
            continue
        path = os.path.join(split_dir, name)
        rows = []
        try:
            with open(path, encoding="utf-8", newline="") as f:
                reader = csv.reader(f)
                for row in reader:
                    if len(row) != 6 or row[5].strip() not in LETTERS:
                        got = f"answer {row[5]!r}" if len(row) == 6 else f"{len(row)} fields"
                        raise UserError(f"{path}:{reader.line_num}: expected question, 4 options and an "
                                        f"answer letter A-D, got {got}")
                    rows.append({"question": row[0], "choices": row[1:5], "answer": row[5].strip()})
        except (OSError, UnicodeDecodeError, csv.Error) as e:
            raise UserError(f"{path}: cannot read ({e})") from None
        if not rows:
            raise UserError(f"{path}: no questions")
        subjects[name[: -len(suffix)]] = rows
    if not subjects:
        raise UserError(f"mmlu: no *{suffix} files in {split_dir}")
    return subjects


def format_question(row: dict, with_answer: bool) -> str:
    lines = [row["question"].strip()] + [f"{L}. {c.strip()}" for L, c in zip(LETTERS, row["choices"])]
    answer = f" {row['answer']}\n\n" if with_answer else ""
    return "\n".join(lines) + "\nAnswer:" + answer


def header(subject: str) -> str:
    return f"The following are multiple choice questions (with answers) about {subject.replace('_', ' ')}.\n\n"


class MMLU:
    name = "mmlu"
    chance = 0.25
    default_shots = 5
    split = "test"

    def __init__(self, opts: EvalOptions):
        self.opts = opts

    def questions(self) -> tuple[list[tuple[str, int, dict]], dict]:
        folder = data_path(self.opts, "mmlu", "mmlu", folder=True)
        test = read_split(folder, self.split)
        k = self.default_shots if self.opts.shots is None else self.opts.shots
        dev = read_split(folder, "dev") if k > 0 else {}
        shots = {}
        for subject in test:
            if k > 0 and subject not in dev:
                raise UserError(f"mmlu: no dev file for subject {subject!r} in {folder}/dev (or pass --shots 0)")
            shots[subject] = [format_question(r, True) for r in dev.get(subject, [])[:k]]
        # round-robin over subjects, so that --limit N still spans them all
        order = sorted(((i, s) for s, rows in test.items() for i in range(len(rows))))
        return [(s, i, test[s][i]) for i, s in order], shots

    def evaluate(self, lm) -> dict:
        questions, shots = self.questions()
        questions = limited(questions, self.opts)
        budget = lm.prompt_budget(max(lm.num_tokens(f" {L}") for L in LETTERS))
        requests, used, cut = [], [], []
        for subject, _, row in questions:
            prompt, n = fit_shots(lm.num_tokens, header(subject), shots[subject],
                                  format_question(row, False), budget)
            used.append(n)
            cut.append(lm.num_tokens(prompt) > budget)  # the model will cut this prompt's start
            requests.extend((prompt, f" {L}") for L in LETTERS)
        scores = lm.loglikelihood(requests)
        items, per_subject = [], {}
        for q, ((subject, index, row), n, truncated) in enumerate(zip(questions, used, cut)):
            logprobs = [scores[4 * q + j][0] for j in range(4)]
            pred = LETTERS[max(range(4), key=logprobs.__getitem__)]
            items.append({"subject": subject, "index": index, "gold": row["answer"], "pred": pred,
                          "correct": pred == row["answer"], "shots": n, "truncated": truncated,
                          "logprobs": [round(x, 4) for x in logprobs]})
            per_subject.setdefault(subject, []).append(pred == row["answer"])
        subject_acc = {s: sum(v) / len(v) for s, v in sorted(per_subject.items())}
        macro = sum(subject_acc.values()) / max(1, len(subject_acc))
        micro = sum(it["correct"] for it in items) / max(1, len(items))
        return make_result(self.name, "acc", micro, self.chance, items, acc_macro=macro, micro_acc=micro,
                           subjects=subject_acc, n_subjects=len(subject_acc), split=self.split,
                           mean_shots=sum(used) / max(1, len(used)),
                           truncated=sum(cut) / max(1, len(cut)))


class MMLUValidation(MMLU):
    """The `val` split (1,531-1,542 questions): rank variants here and keep `test` for reporting."""
    name = "mmlu_val"
    split = "val"
