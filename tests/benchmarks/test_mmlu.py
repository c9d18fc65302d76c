"""MMLU: the shared files' layout and counts, prompt format, round-robin limit, letter scoring
with a deterministic bigram model, shots that do not fit, and malformed CSV errors."""
import csv
import os

import pytest

from foundry.benchmarks.common import EvalOptions
from foundry.benchmarks.mmlu import (
    MMLU,
    MMLUValidation,
    format_question,
    header,
    read_split,
)
from foundry.errors import UserError


def test_shared_files_counted_not_assumed(shared_data):
    folder = os.path.join(shared_data, "mmlu")
    counts = {}
    for split in ("dev", "val", "test"):
        subjects = read_split(folder, split)
        assert len(subjects) == 57
        counts[split] = sum(len(rows) for rows in subjects.values())
        # an independent count: csv records over every file of the split
        expected = 0
        for name in os.listdir(os.path.join(folder, split)):
            with open(os.path.join(folder, split, name), newline="", encoding="utf-8") as f:
                expected += sum(1 for _ in csv.reader(f))
        assert counts[split] == expected
    assert all(len(rows) == 5 for rows in read_split(folder, "dev").values())
    assert counts["test"] in (14079, 14042)  # the early and the final release


def test_prompt_format():
    row = {"question": "2*2?", "choices": ["1", "4", "3", "2"], "answer": "B"}
    assert format_question(row, False) == "2*2?\nA. 1\nB. 4\nC. 3\nD. 2\nAnswer:"
    assert format_question(row, True).endswith("Answer: B\n\n")
    assert header("world_history") == ("The following are multiple choice questions (with answers) "
                                       "about world history.\n\n")


def test_limit_spans_subjects(data_env):
    questions, shots = MMLU(EvalOptions(limit=4)).questions()
    assert [(s, i) for s, i, _ in questions[:4]] == [("algebra", 0), ("world_history", 0), ("algebra", 1),
                                                     ("world_history", 1)]
    assert len(shots["algebra"]) == 3 and shots["algebra"][0].startswith("1+1?\nA. 2")


def test_letter_scoring_with_a_bigram_model(data_env, bigram):
    # after the space that follows "Answer:" this model predicts "B", whatever the question
    lm = bigram({":": " ", " ": "B"})
    result = MMLU(EvalOptions(shots=1)).evaluate(lm)
    assert [it["pred"] for it in result["items"]] == ["B"] * 5
    golds = [it["gold"] for it in result["items"]]
    assert golds == ["A", "B", "B", "D", "C"]  # round-robin order over the two subjects
    assert result["subjects"] == {"algebra": pytest.approx(1 / 3), "world_history": pytest.approx(1 / 2)}
    assert result["metric"] == "acc" and result["score"] == pytest.approx(2 / 5)   # micro: 2 of 5 questions
    assert result["micro_acc"] == result["score"]
    assert result["acc_macro"] == pytest.approx((1 / 3 + 1 / 2) / 2)               # the mean of the subjects
    assert result["centered"] == pytest.approx((result["score"] - 0.25) / 0.75)
    assert result["n_subjects"] == 2 and result["mean_shots"] == 1


def test_shots_that_do_not_fit_are_dropped_from_the_left(data_env, tiny_lm):
    result = MMLU(EvalOptions(shots=5)).evaluate(tiny_lm)  # 64-token context: no shot fits
    assert result["mean_shots"] == 0 and result["n"] == 5
    # the scores are the model's log-likelihoods of " A".." D" after the (left-truncated) prompt
    first = result["items"][0]
    prompt = header("algebra") + "1+1?\nA. 2\nB. 3\nC. 4\nD. 5\nAnswer:"
    direct = tiny_lm.loglikelihood([(prompt, f" {L}") for L in "ABCD"])
    assert first["logprobs"] == [round(lp, 4) for lp, _ in direct]
    assert first["pred"] == "ABCD"[max(range(4), key=lambda j: direct[j][0])]


def test_val_split_and_errors(data_env, tmp_path):
    with pytest.raises(UserError, match=r"mmlu: folder .*val not found"):
        MMLUValidation(EvalOptions()).questions()
    bad = tmp_path / "mmlu" / "test"
    bad.mkdir(parents=True)
    (bad / "x_test.csv").write_text("q,a,b,c,d,A\nq2,a,b,c,d,E\n")
    with pytest.raises(UserError, match=r"x_test.csv:2: expected question, 4 options and an answer letter A-D, got answer 'E'"):
        read_split(str(tmp_path / "mmlu"), "test")
    (bad / "x_test.csv").write_text("q,a,b,c,d,A\n")
    (tmp_path / "mmlu" / "dev").mkdir()
    (tmp_path / "mmlu" / "dev" / "y_dev.csv").write_text("q,a,b,c,d,A\n")
    with pytest.raises(UserError, match=r"no dev file for subject 'x'"):
        MMLU(EvalOptions(paths={"mmlu": str(tmp_path / "mmlu")}, shots=1)).questions()
