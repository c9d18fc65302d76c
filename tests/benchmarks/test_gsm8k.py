"""GSM8K: answer extraction edge cases, all 1,319 gold answers from the reference solutions,
prompts, generation scoring with a bigram model, and --samples scoring."""
import json
import os

import pytest

from foundry.benchmarks.common import EvalOptions
from foundry.benchmarks.gsm8k import (
    GSM8K,
    extract_answer,
    format_example,
    lm_eval_extract,
    lm_eval_normalize,
    load_split,
)
from foundry.errors import UserError


@pytest.mark.parametrize("text, expected", [
    ("The answer is 18.", "18"),
    ("She makes 9 * 2 = $18 every day.\n#### 18", "18"),
    ("#### 1,000,000\nQuestion: what about 7?", "1000000"),
    ("so it costs $1,234.50 in total", "1234.5"),
    ("x = 18.00", "18"),
    ("the temperature is -7 degrees", "-7"),
    ("It is \u22127 outside", "-7"),
    ("a 5-year-old has 3-4 apples", "4"),       # hyphens are not minus signs
    ("so 10 - 3 = 7", "7"),
    ("The answer is 42 dollars, not 50.", "42"),  # "answer is" wins over the last number
    ("1,2,3", "3"),                               # not a thousands separator
    ("it grew by 25%", "25"),
    ("0.5 of 10 is 5.0", "5"),
    ("no numbers here", None),
    ("", None),
])
def test_extract_answer(text, expected):
    assert extract_answer(text) == expected


def test_reference_solutions_give_every_gold_answer(shared_data):
    rows = load_split(os.path.join(shared_data, "gsm8k", "test.jsonl"))
    assert len(rows) == 1319
    wrong = [(r["_line"], r["gold"], extract_answer(r["answer"])) for r in rows if extract_answer(r["answer"]) != r["gold"]]
    assert wrong == []
    assert any("," in r["answer"].rsplit("####", 1)[1] for r in rows)  # the comma case is exercised


@pytest.mark.parametrize("text, strict, flexible", [
    ("She makes $18.\n#### 18", "18", "18"),
    ("#### 1,000\nQuestion: 7?", "1,000", "7"),                 # flexible takes the last match
    ("The answer is 18.00", "[invalid]", "18.00"),               # no "####": strict finds nothing
    ("so it costs $1,234.50.", "[invalid]", "$1,234.50."),
    ("#### -5 apples", "-5", "-5"),
    ("no numbers", "[invalid]", "[invalid]"),
])
def test_lm_eval_strict_and_flexible_answers(text, strict, flexible):
    assert lm_eval_extract(text, "strict_match") == strict
    assert lm_eval_extract(text, "flexible_extract") == flexible


def test_lm_eval_normalization_compares_strings_as_lm_eval_does():
    gold = lm_eval_normalize("Janet sells 16 - 3 - 4 = <<16-3-4=9>>9 duck eggs.\n#### 1,800")
    assert gold == "1800"
    assert lm_eval_normalize("$1,800.") == gold and lm_eval_normalize("1800.00") != gold


def test_every_reference_solution_is_right_under_all_three_answers(shared_data):
    task = GSM8K(EvalOptions(data_dir=shared_data))
    rows = task.test_rows()
    items = [task.score_one(i, r, r["answer"]) for i, r in enumerate(rows)]
    result = task.result(items)
    assert result["score"] == 1.0 and result["strict_match"] == 1.0 and result["flexible_extract"] == 1.0


def test_prompt_format_strips_calculator_annotations():
    shot = format_example("Q?", "2+2=<<2+2=4>>4\n#### 4")
    assert shot == "Question: Q?\nAnswer: 2+2=4\n#### 4\n\n"
    assert format_example(" Q? ") == "Question: Q?\nAnswer:"


def test_evaluate_with_a_bigram_model(data_env, bigram):
    # after "Answer:" the model writes " 42" and then a blank line, which stops generation
    lm = bigram({":": " ", " ": "4", "4": "2", "2": "\n", "\n": "\n"})
    result = GSM8K(EvalOptions(shots=2, max_new_tokens=16)).evaluate(lm)
    assert [it["completion"] for it in result["items"]] == [" 42"] * 3
    assert [it["correct"] for it in result["items"]] == [True, False, False]
    assert result["score"] == pytest.approx(1 / 3) and result["centered"] == pytest.approx(1 / 3)
    assert result["shots_requested"] == 2 and all(it["shots"] == 2 for it in result["items"])


def test_shots_dropped_whole_when_the_context_is_short(data_env, bigram):
    lm = bigram({":": " ", " ": "4", "4": "2", "2": "\n", "\n": "\n"}, block_size=120)
    result = GSM8K(EvalOptions(shots=2, limit=1)).evaluate(lm)
    assert result["items"][0]["shots"] == 0  # two shots do not fit in 120 - 60 tokens


def test_score_samples(data_env, tmp_path):
    samples = tmp_path / "s.jsonl"
    samples.write_text("\n".join(json.dumps(s) for s in [
        {"task_id": 0, "completion": "40 + 2 = 42.\n#### 42"},
        {"task_id": "1", "completion": "The answer is 2,500 dollars"},
        {"task_id": 2, "completion": "It is 7"}]) + "\n")
    result = GSM8K(EvalOptions()).score_samples(str(samples))
    assert [it["correct"] for it in result["items"]] == [True, True, False]
    assert result["score"] == pytest.approx(2 / 3)
    assert [it["strict_match"]["correct"] for it in result["items"]] == [True, False, False]
    assert result["strict_match"] == pytest.approx(1 / 3)


def test_bad_samples_and_files_name_file_and_line(data_env, tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"task_id": 0, "completion": "1"}\n{"task_id": 9, "completion": "1"}\n')
    with pytest.raises(UserError, match=r"bad.jsonl:2: task_id 9"):
        GSM8K(EvalOptions()).score_samples(str(bad))
    broken = tmp_path / "test.jsonl"
    broken.write_text('{"question": "q", "answer": "#### 1"}\n{"question": "q", "answer": "no marker"}\n')
    with pytest.raises(UserError, match=r"test.jsonl:2: answer does not end"):
        load_split(str(broken))
    broken.write_text('{"question": "q", "answer": "#### 1"}\nnot json\n')
    with pytest.raises(UserError, match=r"test.jsonl:2: invalid JSON"):
        load_split(str(broken))
    with pytest.raises(UserError, match=r"gsm8k: file .*missing.jsonl not found"):
        GSM8K(EvalOptions(paths={"gsm8k": str(tmp_path / "missing.jsonl")})).test_rows()
